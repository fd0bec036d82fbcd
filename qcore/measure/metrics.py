"""Metrics shared by every page, report and test (definitions in DESIGN.md)."""

from __future__ import annotations

import math

import torch

CHUNK = 1 << 22  # elements per float64 chunk in ErrorSums and range_in_std
QUALITY_BANDS = (("excellent", 0.95), ("good", 0.90), ("acceptable", 0.85), ("poor", -1.0))


class ErrorSums:
    """Float64 running sums that give cosine and SQNR over any set of tensors."""

    def __init__(self):
        self.ww = self.hh = self.wh = self.ee = 0.0

    def add(self, W: torch.Tensor, W_hat: torch.Tensor) -> ErrorSums:
        """Add a pair of same-shape tensors, in float64 chunks so a huge tensor needs little memory."""
        w_all, h_all = W.reshape(-1), W_hat.reshape(-1)  # (n,) each
        n = w_all.numel()
        buf = torch.empty(2, min(CHUNK, n), dtype=torch.float64)  # one float64 buffer, reused per chunk
        for i in range(0, n, CHUNK):
            X = buf[:, : min(CHUNK, n - i)]  # (2, k): rows w and h
            X[0].copy_(w_all[i : i + X.shape[1]])
            X[1].copy_(h_all[i : i + X.shape[1]])
            G = X @ X.T  # (2, 2): [[ww, wh], [wh, hh]] in one pass over the chunk
            self.ww += float(G[0, 0])
            self.hh += float(G[1, 1])
            self.wh += float(G[0, 1])
            e = X[0].sub_(X[1])  # (k,) the error, in place
            self.ee += float(e @ e)
        return self

    def __iadd__(self, other: ErrorSums) -> ErrorSums:
        self.ww += other.ww
        self.hh += other.hh
        self.wh += other.wh
        self.ee += other.ee
        return self

    @property
    def cosine(self) -> float:
        return cosine_from_sums(self.wh, self.ww, self.hh)

    @property
    def sqnr_db(self) -> float:
        return sqnr_from_sums(self.ww, self.ee)


def cosine_from_sums(wh: float, ww: float, hh: float) -> float:
    """cos = <W, W_hat> / (|W| |W_hat|), clamped to [-1, 1]; 1 when both are zero, 0 when one is."""
    if ww == 0.0 and hh == 0.0:
        return 1.0
    if ww == 0.0 or hh == 0.0:
        return 0.0
    return max(-1.0, min(1.0, wh / math.sqrt(ww * hh)))


def sqnr_from_sums(ww: float, ee: float) -> float:
    """10 log10(sum W^2 / sum E^2) in dB; +inf when the error is exactly zero."""
    if ee == 0.0:
        return math.inf
    if ww == 0.0:
        return -math.inf
    return 10.0 * math.log10(ww / ee)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine of two tensors taken as flat vectors, in float64."""
    return ErrorSums().add(a, b).cosine


def quality_band(cos: float | None) -> str | None:
    """The reference report's bands: excellent > 0.95, good 0.90-0.95, acceptable 0.85-0.90, poor < 0.85."""
    if cos is None:
        return None
    for band, floor in QUALITY_BANDS:
        if cos > floor:
            return band
    return "poor"


def range_in_std(W: torch.Tensor) -> float:
    """Mean over rows of (max - min) / std: how wide a min-max grid is in units of the weights' spread.

    For n Gaussian samples this grows like 2 sqrt(2 ln n), which is why per-channel min-max INT2
    loses accuracy as rows get longer. Rows with zero spread are left out.
    """
    W2 = W.reshape(W.shape[0], -1)  # (out, in)
    if W2.shape[1] < 2 or W2.shape[0] == 0:
        return 0.0
    rows = max(1, CHUNK // W2.shape[1])
    ratios = []
    for r in range(0, W2.shape[0], rows):
        block = W2[r : r + rows].float()  # (rows, in)
        spread = block.std(dim=1).double()  # (rows,) a descriptive ratio: float32 (relative error ~1e-6) will do
        ok = spread > 0
        extent = block.amax(dim=1).double() - block.amin(dim=1).double()  # the extremes are exact
        ratios.append(extent[ok] / spread[ok])
    ratio = torch.cat(ratios)
    return float(ratio.mean()) if ratio.numel() else 0.0


def predicted_cosine(range_std: float, bits: int) -> float:
    """Uniform-noise model of min-max RTN: step = range / (2**bits - 1), error variance step^2 / 12."""
    if range_std <= 0:
        return 1.0
    noise = (range_std / (2**bits - 1)) ** 2 / 12.0  # in units of the weights' variance
    return 1.0 / math.sqrt(1.0 + noise)
