"""Runs by spec: open the model a ModelRef names, and run a RunSpec on it."""

from __future__ import annotations

from pathlib import Path

from ..errors import QcoreError
from ..formats.readers import read_server_weights, read_weights
from ..measure.pipeline import RunResult, run
from ..models.catalog import load_model
from ..models.model import Model
from ..progress import Progress
from .specs import ModelRef, RunSpec


def open_model(ref: ModelRef, max_bytes: int | None = None) -> Model:
    """The model a ref names. An upload lives in its session, so only the session that holds it can open it."""
    if ref.kind == "preset":
        return load_model(ref.name)
    if ref.kind == "file":
        return read_weights(ref.name, max_bytes=max_bytes)
    if ref.kind == "server":
        return read_server_weights(ref.name, max_bytes=max_bytes)
    raise QcoreError(f"the uploaded file {ref.name} is open only in the session that uploaded it; upload it again")


def run_spec(
    spec: RunSpec,
    model: Model | None = None,
    out: str | Path | None = None,
    progress: Progress | None = None,
    keep: bool = True,
) -> RunResult:
    """qcore's run for a spec: the model it names (or `model`, already open), its method, options, policy, codec.

    A refusal while running a file's model names the file, as a reader's own messages do."""
    model = model if model is not None else open_model(spec.model)
    try:
        return run(
            model, spec.method, dict(spec.options), spec.policy, spec.codec, out=out, progress=progress, keep=keep
        )
    except QcoreError as e:
        if spec.model.kind == "preset" or str(e).startswith(f"{model.name}:"):
            raise
        raise QcoreError(f"{model.name}: {e}") from None
