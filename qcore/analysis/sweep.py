"""Analyses over records: method sweeps, the Pareto front, and naive size extrapolation."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import QcoreError
from ..measure.pipeline import run
from ..models.model import Model
from ..models.policy import Policy
from ..progress import Progress

# Parameter counts the reference report extrapolated to, plus a generic 1B.
NAMED_SIZES = {"Qwen3-0.6B (~0.6B)": 600_000_000, "1B": 1_000_000_000, "LLaMA-7B (~7B)": 7_000_000_000}


def sweep(
    model: Model, specs: Sequence[tuple[str, dict]], policy: Policy = Policy(), progress: Progress | None = None
) -> list[dict]:
    """Run each (method, options) on one model; returns one record per spec, in order."""
    records = []
    for i, (method, options) in enumerate(specs):
        if progress:  # before the work: the label names the configuration now running
            progress(i, len(specs), f"{method} {options}")
        records.append(run(model, method, options, policy).record)
    return records


def pareto_front(records: Sequence[dict], x: str = "bpw", y: str = "weight_cosine") -> list[bool]:
    """True where no other record has x <= and y >= with one strictly better (small x, large y win).

    Records whose y is None (e.g. output cosine of a model that cannot run) are never on the front.
    """
    pts = [(r[x], r[y]) for r in records]
    front = []
    for i, (xi, yi) in enumerate(pts):
        if yi is None or xi is None:
            front.append(False)
            continue
        dominated = any(
            xj is not None and yj is not None and xj <= xi and yj >= yi and (xj < xi or yj > yi)
            for j, (xj, yj) in enumerate(pts)
            if j != i
        )
        front.append(not dominated)
    return front


def naive_extrapolation(records: Sequence[dict], targets: dict[str, int]) -> list[dict]:
    """Sizes at other parameter counts from each record's measured bits per weight.

    bytes = params x bpw / 8, where bpw = 8 x file bytes / params was measured on the record's model
    (FP16 likewise). It assumes the target is built like the measured model; real architectures keep
    embeddings and norms in FP16, which the architecture-aware extrapolation accounts for.
    """
    rows = []
    for r in records:
        fp16_bpw = 8 * r["fp16_bytes"] / r["params"]
        rows.append(_size_row(r, r["source"], r["params"], r["fp16_bytes"], r["quantized_bytes"], True))
        for label, params in targets.items():
            if params <= 0:
                raise QcoreError(f"parameter count must be positive, got {params}")
            rows.append(_size_row(r, label, params, params * fp16_bpw / 8, params * r["bpw"] / 8, False))
    return rows


def _size_row(r: dict, label: str, params: int, fp16: float, quant: float, measured: bool) -> dict:
    return {
        "method": r["method"],
        "model": label,
        "params": params,
        "bpw": 8 * quant / params,
        "fp16_bytes": fp16,
        "quantized_bytes": quant,
        "compression_ratio": fp16 / quant,
        "memory_saving": 1 - quant / fp16,
        "saved_bytes": fp16 - quant,
        "measured": measured,
    }
