"""The record of one run, built one tensor at a time: sizes (from the writer), accuracy, task and layer figures."""

from __future__ import annotations

import math

import torch

from ..formats.storage import ArtifactStats
from ..methods.quant import Quantized, QuantizedTensor
from ..models.model import Model
from .metrics import ErrorSums, cosine, limits, predicted_cosine, range_in_std
from .verdict import verdict

SYNTH_COLUMNS = 32  # inputs x ~ N(0, I) per layer for the synthetic-input output cosine
ROW_BLOCK = 1 << 22  # weights per block when a quantized tensor is measured without a full W_hat


class Measure:
    """Accumulates the record's metrics one tensor at a time.

    keep_approx: hold every W_hat (the model's code and task need the whole approximate model); otherwise each
    tensor is measured a block of rows at a time and nothing is held. minmax: whether the uniform-noise model of
    min-max RTN predicts this config's error (the per-layer predicted cosine).
    """

    def __init__(self, model: Model, keep_approx: bool, minmax: bool = False):
        self.model = model
        self.keep_approx = keep_approx
        self.minmax = minmax
        self.total, self.synth = ErrorSums(), ErrorSums()
        self.layers: list[dict] = []
        self.approx: dict[str, torch.Tensor] = {}
        self.hist: torch.Tensor | None = None
        self.qparams = 0
        self.params = 0

    def add(self, name: str, W: torch.Tensor, item: Quantized | torch.Tensor) -> None:
        self.params += W.numel()
        if not isinstance(item, Quantized):
            if self.keep_approx:
                self.approx[name] = item.float()  # kept in FP16 (a method that trains may have updated it)
            return
        W_hat = item.dequantize() if self.keep_approx or not item.row_local else None  # else a block of rows at a time
        if W_hat is not None:
            self.approx[name] = W_hat
        self._count_codes(item)
        synthetic = self.model.forward is None  # no model code: cos(W x, W_hat x) for x ~ N(0, I) instead
        sums, synth = ErrorSums(), ErrorSums()
        for W_rows, W_hat_rows in row_blocks(W, item, W_hat):  # one pass: each block dequantized once
            sums.add(W_rows, W_hat_rows)
            if synthetic:
                synth += synthetic_output_sums(W_rows, W_hat_rows)
        self.total += sums
        self.qparams += W.numel()
        r = range_in_std(W)
        layer = {
            "name": name,
            "shape": list(W.shape),
            "params": W.numel(),
            "bits": item.bits,
            "weight_cosine": sums.cosine,
            "sqnr_db": finite(sums.sqnr_db),
            "range_std": r,
            "predicted_cosine": predicted_cosine(r, item.bits) if self.minmax else None,
        }
        if synthetic:
            self.synth += synth
            layer["synthetic_output_cosine"] = synth.cosine
        self.layers.append(layer)

    def _count_codes(self, item: Quantized) -> None:
        """The histogram of codes over tensors of one code width (for the code entropy)."""
        if isinstance(item, QuantizedTensor):
            h = torch.bincount(item.q.reshape(-1), minlength=2**item.bits).double()
            if self.hist is None:
                self.hist = h
            elif self.hist.numel() == h.numel():
                self.hist += h

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
            "sqnr_db": finite(self.total.sqnr_db) if qp else None,
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
        judged = verdict(rec["weight_cosine"], rec["task"])  # task metrics where the model has them
        rec.update(quality=judged.band, quality_basis=judged.basis, quality_evidence=judged.evidence)
        rec["theoretical_file_ratio"] = theoretical_file_ratio(self.params, stats)
        rec["limits"] = limits(rec["payload_meta_bpw"], rec["sqnr_db"])  # codes and scales per quantized weight
        return rec


def theoretical_file_ratio(params: int, stats: ArtifactStats) -> float | None:
    """FP16 bytes of every weight / (packed codes + the tensors kept in FP16): the whole file's ratio with no scales
    and no container. Beside the codes-only 16 / payload bits, it shows what the tensors the policy keeps cost."""
    bare = stats.payload_bytes + stats.passthrough_bytes
    return 2 * params / bare if bare else None


def row_blocks(W: torch.Tensor, item: Quantized, W_hat: torch.Tensor | None):
    """(W rows, W_hat rows) as (rows, in) pairs in fixed blocks, so held and streamed runs sum identically.

    When W_hat is None each block is dequantized on its own: no second full-size tensor is held.
    """
    W2 = W.reshape(W.shape[0], -1)  # (out, in)
    H2 = W_hat.reshape(W2.shape) if W_hat is not None else None  # (out, in)
    rows = max(1, ROW_BLOCK // max(W2.shape[1], 1))
    for r in range(0, W2.shape[0], rows):
        block = H2[r : r + rows] if H2 is not None else item.rows(r, r + rows).dequantize()
        yield W2[r : r + rows], block.reshape(-1, W2.shape[1])


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
    if not model.can_run:
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


def finite(x: float) -> float | None:
    """JSON has no infinity: an exactly zero error (infinite SQNR) is reported as null."""
    return x if math.isfinite(x) else None
