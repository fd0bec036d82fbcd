"""One run: select tensors, quantize, store, measure. Returns the record every surface prints."""

from __future__ import annotations

import ctypes
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import QcoreError
from ..formats.storage import ArtifactWriter, count_bytes
from ..methods.calibration import layer_hessian
from ..methods.common import check_finite
from ..methods.contract import ModelJob
from ..methods.quant import Quantized
from ..methods.registry import Method, config_dict, get_method
from ..models.model import Model
from ..models.policy import Policy
from ..progress import Progress
from .feasible import run_blocker
from .record import Measure

Item = Quantized | torch.Tensor  # what a run stores for a tensor: its quantization, or the tensor kept in FP16
MEASURING = "measuring outputs on held-out data"  # the label of a run's last step, where the model can run


@dataclass
class RunResult:
    record: dict
    quantized: dict[str, Item] = field(repr=False)
    artifact: bytes | None = field(default=None, repr=False)  # the file's bytes when written to memory


class Clock:
    """Seconds spent inside `with clock:` blocks (quantization alone: no I/O, no metrics)."""

    def __init__(self):
        self.seconds = 0.0

    def __enter__(self):
        self._t0 = time.perf_counter()

    def __exit__(self, *exc):
        self.seconds += time.perf_counter() - self._t0


def fp16_baseline_bytes(model: Model) -> int:
    """Bytes of the FP16 baseline artifact: same storage code and layout, float16 values for codes.

    `run` counts the same file in its own pass over the tensors; this is the standalone count.
    """
    return count_bytes(model.tensors)


def quantize_items(
    model: Model, method: Method, cfg, policy: Policy, progress: Progress | None = None, clock: Clock | None = None
) -> Iterator[tuple[str, torch.Tensor, Item]]:
    """(name, W, item) for every tensor in model order: the one loop over a model's tensors.

    Per-tensor methods load, quantize and release one tensor at a time; a calibrated method sees the model with
    every earlier layer already quantized (GPTQ's order); a whole-model form runs once, then its results stream.
    """
    clock = clock or Clock()
    if method.needs_calibration and not model.can_calibrate:
        raise QcoreError(
            f"method '{method.name}' needs calibration data, and '{model.name}' has none (no runnable model code); "
            "choose a calibration-free method such as rtn"
        )
    if method.quantize_model_fn is not None:
        done = _whole_model(model, method, cfg, policy, progress, clock)
        for name in model.tensors:
            yield name, model.tensors[name], done.get(name, model.tensors[name])
        return
    calibrate = method.uses_hessian(cfg) and model.can_calibrate
    current = dict(model.tensors) if calibrate else None  # W_hat replaces each finished layer
    names = list(model.tensors)
    for i, name in enumerate(names):
        W = model.tensors[name]
        item = W
        if policy.selects(name, W, model):
            if progress:  # before the work: the label names the tensor now being quantized
                progress(i, len(names), name)
            inner = progress and (lambda _d, _t, what, i=i, name=name: progress(i, len(names), f"{name}: {what}"))
            with clock:
                H = layer_hessian(model, current, name) if current is not None else None
                item = _quantize_one(method, W, cfg, name, H, inner)
            if current is not None:
                current[name] = item.dequantize()
        yield name, W, item


def _quantize_one(method: Method, W: torch.Tensor, cfg, name: str, H: torch.Tensor | None, progress) -> Quantized:
    try:
        return method.quantize(W, cfg, H=H, progress=progress)
    except QcoreError as e:
        raise QcoreError(f"{name}: {e}") from None


def _whole_model(model: Model, method: Method, cfg, policy: Policy, progress, clock: Clock) -> dict[str, Item]:
    selected = {n: W for n, W in model.tensors.items() if policy.selects(n, W, model)}
    kept = {n: W for n, W in model.tensors.items() if n not in selected}
    for name, W in selected.items():
        check_finite(W, name)
    in_order = lambda items: count_bytes({n: items[n] for n in model.tensors if n in items})  # noqa: E731
    if progress:  # the method reports its own steps from here on
        progress(0, len(model.tensors), f"{method.name}: {len(selected)} tensors at once")
    with clock:
        done = method.quantize_model(ModelJob(model, selected, kept, in_order, progress), cfg)
    return done


def quantize_model(
    model: Model, method: str, cfg, policy: Policy = Policy(), progress: Progress | None = None
) -> tuple[dict[str, Item], float]:
    """Quantize the selected tensors. Returns ({name: Quantized or original tensor}, quantization seconds)."""
    clock = Clock()
    items = {name: item for name, _, item in quantize_items(model, get_method(method), cfg, policy, progress, clock)}
    return items, clock.seconds


def run(
    model: Model,
    method: str,
    options: dict | None = None,
    policy: Policy = Policy(),
    codec: str = "none",
    out: str | Path | None = None,
    progress: Progress | None = None,
    keep: bool = True,
) -> RunResult:
    """Quantize `model` with `method`, write the artifact (to `out`, or to memory), and measure it.

    With keep=False nothing is held beyond the tensor at hand: the artifact goes straight to `out` (or is only
    counted), so a model larger than memory streams through.
    """
    m = get_method(method)
    cfg = m.make_config(**(options or {}))
    if model.params == 0:  # every ratio of the record divides by the weights (a model of empty tensors has none)
        raise QcoreError(f"{model.name}: no tensor with any elements to quantize (every tensor is empty)")
    blocker = run_blocker(model, method, options or {}, policy, check_floor=False)
    if blocker is not None:  # a run that quantizes nothing would read "1.00x, excellent": say why instead
        raise QcoreError(f"{model.name}: {blocker.message}; nothing would change (see --include / --exclude)")
    clock = Clock()
    measure = Measure(model, keep_approx=model.forward is not None or model.task is not None, minmax=m.minmax(cfg))
    quantized: dict[str, Item] = {}
    baseline = ArtifactWriter(None, count_only=True)  # the FP16 file, counted in this same pass
    with baseline, ArtifactWriter(out, codec, count_only=not keep and out is None) as writer:
        for name, W, item in quantize_items(model, m, cfg, policy, progress, clock):
            writer.write(name, item)
            baseline.write(name, W)
            measure.add(name, W, item)
            if keep:
                quantized[name] = item
            else:
                del W, item
                release_memory()
    if progress:  # the last step: the model's outputs and task metrics (or the weights' figures alone)
        n = len(model.tensors)
        progress(n, n, MEASURING if measure.keep_approx else "measuring the weights")
    record = measure.record(writer.stats, baseline.stats.file_bytes)
    record.update(
        method=method,
        config=config_dict(cfg),
        bits=getattr(cfg, "bits", None),
        group_size=getattr(cfg, "group_size", None),
        policy=policy.describe(),
        quant_seconds=clock.seconds,
        threads=torch.get_num_threads(),
        artifact=str(out) if out else None,
    )
    record["theoretical_ratio"] = 16.0 / record["payload_bpw"] if record["payload_bpw"] else None
    return RunResult(record, quantized, writer.data)


def release_memory() -> None:
    """Return freed heap pages to the OS between tensors of a streamed model (glibc only)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
