"""One run: select tensors, quantize, store, measure. Returns the record every surface prints."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import QcoreError
from .metrics import ErrorSums, cosine, predicted_cosine, quality_band, range_in_std
from .presets import Model
from .quant import MixedTensor, QuantizedTensor, dequantize
from .registry import get_method
from .rtn import check_finite
from .storage import ArtifactStats, ArtifactWriter, save

Progress = Callable[[int, int, str], None]  # (done, total, label)


@dataclass(frozen=True)
class Policy:
    """Which tensors are quantized. Tensors with fewer than two dims (biases, norms) always stay FP16."""

    quantize_head: bool = True  # the output head (an MLP's last layer, an LM's lm_head)
    include: str | None = None  # regex: only names that match are quantized
    exclude: str | None = None  # regex: names that match stay FP16

    def __post_init__(self):
        for pattern in (self.include, self.exclude):
            if pattern:
                try:
                    re.compile(pattern)
                except re.error as e:
                    raise QcoreError(f"bad regular expression '{pattern}': {e}") from None

    def selects(self, name: str, W: torch.Tensor, model: Model) -> bool:
        if W.dim() < 2 or W.numel() == 0 or not W.is_floating_point():
            return False
        if not self.quantize_head and name in model.head:
            return False
        if self.include and not re.search(self.include, name):
            return False
        return not (self.exclude and re.search(self.exclude, name))

    def describe(self) -> str:
        parts = ["tensors with 2+ dims", "head " + ("quantized" if self.quantize_head else "kept FP16")]
        if self.include:
            parts.append(f"include /{self.include}/")
        if self.exclude:
            parts.append(f"exclude /{self.exclude}/")
        return "; ".join(parts)


@dataclass
class RunResult:
    record: dict
    quantized: dict[str, QuantizedTensor | torch.Tensor] = field(repr=False)
    artifact: bytes | None = field(default=None, repr=False)  # the file's bytes when written to memory


def fp16_baseline_bytes(model: Model) -> int:
    """Bytes of the FP16 baseline artifact: same storage code and layout, float16 values for codes."""
    stats, _ = save(None, model.tensors)
    return stats.file_bytes


def quantize_model(
    model: Model, method: str, config, policy: Policy = Policy(), progress: Progress | None = None
) -> tuple[dict[str, QuantizedTensor | torch.Tensor], float]:
    """Quantize the selected tensors. Returns ({name: QuantizedTensor or original tensor}, quant seconds)."""
    m = get_method(method)
    if m.needs_calibration and (model.forward is None or model.calib_inputs is None):
        raise QcoreError(
            f"method '{method}' needs calibration data, and '{model.name}' has none (no runnable model code); "
            "choose a calibration-free method such as rtn"
        )
    if m.quantize_all is not None:
        t0 = time.perf_counter()
        chosen = {n: W for n, W in model.tensors.items() if policy.selects(n, W, model)}
        kept = {n: W for n, W in model.tensors.items() if n not in chosen}
        for name, W in chosen.items():
            check_finite(W, name)
        done = m.quantize_all(model, chosen, kept, config)
        seconds = time.perf_counter() - t0
        if progress:
            progress(len(model.tensors), len(model.tensors), "all tensors")
        return {n: done.get(n, W) for n, W in model.tensors.items()}, seconds
    out: dict[str, QuantizedTensor | torch.Tensor] = {}
    current = dict(model.tensors)  # earlier layers replaced by W_hat: GPTQ calibrates on the quantized model
    seconds = 0.0
    names = list(model.tensors)
    for i, name in enumerate(names):
        W = model.tensors[name]
        if policy.selects(name, W, model):
            t0 = time.perf_counter()
            try:
                if m.needs_calibration:
                    out[name] = m.quantize(W, config, H=layer_hessian(model, current, name))
                    current[name] = dequantize(out[name])
                else:
                    out[name] = m.quantize(W, config)
            except QcoreError as e:
                raise QcoreError(f"{name}: {e}") from None
            seconds += time.perf_counter() - t0
        else:
            out[name] = W
        if progress:
            progress(i + 1, len(names), name)
    return out, seconds


def layer_hessian(model: Model, tensors: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    """H = 2 X^T X / n from the inputs that reach layer `name` on the calibration batch. (in, in) float32."""
    capture: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        model.forward(tensors, model.calib_inputs, capture)
    if name not in capture:
        raise QcoreError(f"the model code never feeds '{name}', so it cannot be calibrated")
    X = capture[name].reshape(-1, capture[name].shape[-1]).float()  # (n, in)
    return (2.0 / X.shape[0]) * (X.T @ X)  # (in, in)


def run(
    model: Model,
    method: str,
    options: dict | None = None,
    policy: Policy = Policy(),
    codec: str = "none",
    out: str | Path | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Quantize `model` with `method`, write the artifact (to `out`, or to memory), and measure it."""
    m = get_method(method)
    config = m.make_config(**(options or {}))
    quantized, seconds = quantize_model(model, method, config, policy, progress)
    with ArtifactWriter(out, codec) as writer:
        for name, item in quantized.items():
            writer.write(name, item)
    record = measure(model, quantized, writer.stats, fp16_baseline_bytes(model))
    record.update(
        method=method,
        config={k: v for k, v in vars(config).items()},
        bits=getattr(config, "bits", None),
        group_size=getattr(config, "group_size", None),
        policy=policy.describe(),
        quant_seconds=seconds,
        threads=torch.get_num_threads(),
        artifact=str(out) if out else None,
    )
    record["theoretical_ratio"] = 16.0 / record["payload_bpw"] if record["payload_bpw"] else None
    return RunResult(record, quantized, writer.data)


def measure(
    model: Model, quantized: dict[str, QuantizedTensor | torch.Tensor], stats: ArtifactStats, fp16_bytes: int
) -> dict:
    """Sizes, weight cosine/SQNR (whole model and per layer) and output cosine, as a record."""
    total = ErrorSums()
    layers, approx = [], {}
    hist = None
    qparams = 0
    for name, item in quantized.items():
        W = model.tensors[name]
        if not isinstance(item, QuantizedTensor | MixedTensor):
            approx[name] = item  # kept in FP16 here (a method that trains may have updated it)
            continue
        W_hat = dequantize(item)
        approx[name] = W_hat
        if isinstance(item, QuantizedTensor):
            h = torch.bincount(item.q.reshape(-1), minlength=2**item.bits).double()
            hist = h if hist is None else (hist + h if hist.numel() == h.numel() else hist)
        sums = ErrorSums().add(W, W_hat)
        total += sums
        qparams += W.numel()
        r = range_in_std(W)
        minmax = item.method in ("int2", "rtn") and not item.config.get("sym") and not item.config.get("clip")
        layers.append(
            {
                "name": name,
                "shape": list(W.shape),
                "params": W.numel(),
                "bits": item.bits,
                "weight_cosine": sums.cosine,
                "sqnr_db": _finite(sums.sqnr_db),
                "range_std": r,
                "predicted_cosine": predicted_cosine(r, item.bits) if minmax else None,
            }
        )
    params = model.params
    qb = stats.file_bytes
    payload_bits = 8 * stats.payload_bytes
    record = {
        "source": model.name,
        "params": params,
        "quantized_params": qparams,
        "fp16_bytes": fp16_bytes,
        "quantized_bytes": qb,
        "compression_ratio": fp16_bytes / qb,
        "bpw": 8 * qb / params,
        "payload_bpw": payload_bits / qparams if qparams else None,
        "weight_cosine": total.cosine if qparams else 1.0,
        "sqnr_db": _finite(total.sqnr_db) if qparams else None,
        "output_cosine": output_cosine(model, approx),
        "task": task_metrics(model, approx),
        "memory_saving": 1 - qb / fp16_bytes,
        "saved_bytes": fp16_bytes - qb,
        "breakdown": stats.as_dict(),
        "metadata_share": (stats.metadata_bytes + stats.container_bytes) / qb,
        "code_entropy": code_entropy(hist) if hist is not None else None,
        "range_std": sum(la["range_std"] * la["params"] for la in layers) / qparams if qparams else None,
        "layers": layers,
    }
    record["quality"] = quality_band(record["weight_cosine"])
    return record


def code_entropy(hist: torch.Tensor) -> float:
    """Shannon entropy of the code histogram in bits per weight: what an ideal codec could shrink codes to."""
    p = hist[hist > 0] / hist.sum()
    return float(-(p * p.log2()).sum())


def output_cosine(model: Model, approx: dict[str, torch.Tensor]) -> float | None:
    """Cosine between the original and quantized model's outputs on its evaluation batch (None if it can't run)."""
    if model.forward is None or model.eval_inputs is None:
        return None
    with torch.no_grad():
        ref = model.forward(model.tensors, model.eval_inputs)
        got = model.forward(approx, model.eval_inputs)
    return cosine(ref, got)


def task_metrics(model: Model, approx: dict[str, torch.Tensor]) -> dict | None:
    """The model's own metrics (accuracy, perplexity, KL, ...) for the quantized weights, or None."""
    if model.task is None:
        return None
    with torch.no_grad():
        return model.task(model.tensors, approx)


def _finite(x: float) -> float | None:
    """JSON has no infinity: an exactly zero error (infinite SQNR) is reported as null."""
    return x if math.isfinite(x) else None
