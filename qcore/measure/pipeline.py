"""One run: select tensors, quantize, store, measure. Returns the record every surface prints."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import QcoreError
from ..formats.storage import ArtifactStats, ArtifactWriter
from ..methods.quant import MixedTensor, QuantizedTensor, dequantize, slice_rows
from ..methods.registry import get_method
from ..methods.rtn import check_finite
from ..models.presets import Model
from .metrics import ErrorSums, cosine, predicted_cosine, quality_band, range_in_std

Progress = Callable[[int, int, str], None]  # (done, total, label)


@dataclass(frozen=True)
class Policy:
    """Which tensors are quantized. Tensors with fewer than two dims (biases, norms) always stay FP16."""

    quantize_head: bool = True  # the output head (an MLP's last layer, an LM's lm_head)
    quantize_embeddings: bool = False  # embedding tables (token, position), kept FP16 by default
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
        if not self.quantize_embeddings and name in model.embeddings:
            return False
        if self.include and not re.search(self.include, name):
            return False
        return not (self.exclude and re.search(self.exclude, name))

    def describe(self) -> str:
        parts = [
            "tensors with 2+ dims",
            "head " + ("quantized" if self.quantize_head else "kept FP16"),
            "embeddings " + ("quantized" if self.quantize_embeddings else "kept FP16"),
        ]
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
    """Bytes of the FP16 baseline artifact: same storage code and layout, float16 values for codes.

    `run` counts the same file in its own pass over the tensors; this is the standalone count.
    """
    with ArtifactWriter(None, count_only=True) as writer:
        for name in model.tensors:
            writer.write(name, model.tensors[name])
    return writer.stats.file_bytes


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
                    H = lookup_hessian(W) if name in model.embeddings else layer_hessian(model, current, name)
                    out[name] = m.quantize(W, config, H=H)
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


def lookup_hessian(W: torch.Tensor) -> torch.Tensor:
    """The Hessian of an embedding table: the identity (dim, dim).

    A lookup copies one row, so every output element depends on one weight and no two columns interact:
    the Hessian over the columns is diagonal, and GPTQ's error feedback vanishes (it rounds to nearest on
    its own grid). Token frequencies would only weight rows, which column-wise feedback cannot use.
    """
    return torch.eye(W.shape[-1])


def layer_hessian(model: Model, tensors: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    """H = 2 X^T X / n from the inputs that reach layer `name` on the calibration batch. (in, in) float32."""
    capture: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        model.forward(tensors, model.calib_inputs, capture)
    if name not in capture:
        raise QcoreError(f"the model code never feeds '{name}', so it cannot be calibrated")
    X = capture[name].reshape(-1, capture[name].shape[-1]).float()  # (n, in)
    return (2.0 / X.shape[0]) * (X.T @ X)  # (in, in)


def _stream(model: Model, m, config, policy: Policy, progress: Progress | None, clock: list[float]):
    """Yield (name, W, item) in model order; per-tensor methods load, quantize and release one tensor at a time."""
    if m.quantize_all is not None or m.needs_calibration:
        quantized, clock[0] = quantize_model(model, m.name, config, policy, progress)
        for name, item in quantized.items():
            yield name, model.tensors[name], item
        return
    names = list(model.tensors)
    for i, name in enumerate(names):
        W = model.tensors[name]
        item = W
        if policy.selects(name, W, model):
            t0 = time.perf_counter()
            try:
                item = m.quantize(W, config)
            except QcoreError as e:
                raise QcoreError(f"{name}: {e}") from None
            clock[0] += time.perf_counter() - t0
        yield name, W, item
        if progress:
            progress(i + 1, len(names), name)


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

    With keep=False nothing is held beyond the tensor at hand: the artifact goes straight to `out`
    (or is only counted), so a model larger than memory streams through.
    """
    m = get_method(method)
    config = m.make_config(**(options or {}))
    clock = [0.0]
    acc = Measure(model, keep_approx=model.forward is not None or model.task is not None)
    quantized: dict[str, QuantizedTensor | MixedTensor | torch.Tensor] = {}
    baseline = ArtifactWriter(None, count_only=True)  # the FP16 file, counted in this same pass
    with baseline, ArtifactWriter(out, codec, count_only=not keep and out is None) as writer:
        for name, W, item in _stream(model, m, config, policy, progress, clock):
            writer.write(name, item)
            baseline.write(name, W)
            acc.add(name, W, item)
            if keep:
                quantized[name] = item
            else:
                del W, item
                release_memory()
    record = acc.record(writer.stats, baseline.stats.file_bytes)
    record.update(
        method=method,
        config={k: v for k, v in vars(config).items()},
        bits=getattr(config, "bits", None),
        group_size=getattr(config, "group_size", None),
        policy=policy.describe(),
        quant_seconds=clock[0],
        threads=torch.get_num_threads(),
        artifact=str(out) if out else None,
    )
    record["theoretical_ratio"] = 16.0 / record["payload_bpw"] if record["payload_bpw"] else None
    return RunResult(record, quantized, writer.data)


SYNTH_COLUMNS = 32  # inputs x ~ N(0, I) per layer for the synthetic-input output cosine


class Measure:
    """Accumulates the record's metrics one tensor at a time (sizes come from the writer)."""

    def __init__(self, model: Model, keep_approx: bool):
        self.model = model
        self.keep_approx = keep_approx
        self.total, self.synth = ErrorSums(), ErrorSums()
        self.layers: list[dict] = []
        self.approx: dict[str, torch.Tensor] = {}
        self.hist: torch.Tensor | None = None
        self.qparams = 0
        self.params = 0

    def add(self, name: str, W: torch.Tensor, item) -> None:
        self.params += W.numel()
        if not isinstance(item, QuantizedTensor | MixedTensor):
            if self.keep_approx:
                self.approx[name] = item  # kept in FP16 here (a method that trains may have updated it)
            return
        if self.keep_approx or not isinstance(item, QuantizedTensor):
            W_hat = dequantize(item)
        else:  # streaming: a block of rows at a time, never a second full-size tensor
            W_hat = None
        if self.keep_approx:
            self.approx[name] = W_hat
        if isinstance(item, QuantizedTensor):
            h = torch.bincount(item.q.reshape(-1), minlength=2**item.bits).double()
            self.hist = h if self.hist is None else (self.hist + h if self.hist.numel() == h.numel() else self.hist)
        synthetic = self.model.forward is None  # no model code: cos(W x, W_hat x) for x ~ N(0, I) instead
        sums, synth = ErrorSums(), ErrorSums()
        for W_rows, W_hat_rows in _row_blocks(W, item, W_hat):  # one pass: each block dequantized once
            sums.add(W_rows, W_hat_rows)
            if synthetic:
                synth += synthetic_output_sums(W_rows, W_hat_rows)
        self.total += sums
        self.qparams += W.numel()
        r = range_in_std(W)
        minmax = item.method in ("int2", "rtn") and not item.config.get("sym") and not item.config.get("clip")
        layer = {
            "name": name,
            "shape": list(W.shape),
            "params": W.numel(),
            "bits": item.bits,
            "weight_cosine": sums.cosine,
            "sqnr_db": _finite(sums.sqnr_db),
            "range_std": r,
            "predicted_cosine": predicted_cosine(r, item.bits) if minmax else None,
        }
        if synthetic:
            self.synth += synth
            layer["synthetic_output_cosine"] = synth.cosine
        self.layers.append(layer)

    def record(self, stats: ArtifactStats, fp16_bytes: int) -> dict:
        qb, qp = stats.file_bytes, self.qparams
        rec = {
            "source": self.model.name,
            "params": self.params,
            "quantized_params": qp,
            "fp16_bytes": fp16_bytes,
            "quantized_bytes": qb,
            "compression_ratio": fp16_bytes / qb,
            "bpw": 8 * qb / self.params,
            "payload_bpw": 8 * stats.payload_bytes / qp if qp else None,
            # codes plus scales, zeros and code books, per quantized weight (no FP16 tensors, no container)
            "payload_meta_bpw": 8 * (stats.payload_bytes + stats.metadata_bytes) / qp if qp else None,
            "weight_cosine": self.total.cosine if qp else 1.0,
            "sqnr_db": _finite(self.total.sqnr_db) if qp else None,
            "output_cosine": output_cosine(self.model, self.approx),
            "synthetic_output_cosine": self.synth.cosine if self.model.forward is None and qp else None,
            "task": task_metrics(self.model, self.approx),
            "memory_saving": 1 - qb / fp16_bytes,
            "saved_bytes": fp16_bytes - qb,
            "breakdown": stats.as_dict(),
            "metadata_share": (stats.metadata_bytes + stats.container_bytes) / qb,
            "code_entropy": code_entropy(self.hist) if self.hist is not None else None,
            "range_std": sum(la["range_std"] * la["params"] for la in self.layers) / qp if qp else None,
            "layers": self.layers,
        }
        rec["quality"] = quality_band(rec["weight_cosine"])
        return rec


ROW_BLOCK = 1 << 22  # weights per block when a quantized tensor is measured without a full W_hat


def _row_blocks(W: torch.Tensor, item, W_hat: torch.Tensor | None):
    """(W rows, W_hat rows) as (rows, in) pairs in fixed blocks, so held and streamed runs sum identically.

    When W_hat is None each block is dequantized on its own: no second full-size tensor is held.
    """
    W2 = W.reshape(W.shape[0], -1)  # (out, in)
    H2 = W_hat.reshape(W2.shape) if W_hat is not None else None  # (out, in)
    rows = max(1, ROW_BLOCK // max(W2.shape[1], 1))
    for r in range(0, W2.shape[0], rows):
        block = H2[r : r + rows] if H2 is not None else dequantize(slice_rows(item, r, r + rows))
        yield W2[r : r + rows], block.reshape(-1, W2.shape[1])


def release_memory() -> None:
    """Return freed heap pages to the OS between tensors of a streamed model (glibc only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def synthetic_output_sums(W: torch.Tensor, W_hat: torch.Tensor) -> ErrorSums:
    """Sums for cos(W x, W_hat x) with x ~ N(0, I) (seeded by the input width): an output cosine without model code."""
    W2, H2 = W.reshape(W.shape[0], -1), W_hat.reshape(W.shape[0], -1)  # (out, in)
    x = torch.randn(W2.shape[1], SYNTH_COLUMNS, generator=torch.Generator().manual_seed(W2.shape[1]))  # (in, k)
    return ErrorSums().add(W2.float() @ x, H2.float() @ x)  # (out, k) each


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
