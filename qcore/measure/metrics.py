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


# ---- limits for a Gaussian source (DESIGN.md) ------------------------------------------------------------------

# Normalized MSE of the optimal scalar (Lloyd-Max) quantizer of N(0, 1) at 1..4 bits (Max 1960, table of levels).
LLOYD_MAX_D = {1: 0.3634, 2: 0.1175, 3: 0.03454, 4: 0.009497}


def rd_bound(rate: float) -> float:
    """Distortion-rate bound of a Gaussian source: D(R) = 2^(-2R) (normalized MSE), i.e. SQNR 6.02 R dB."""
    return 2.0 ** (-2.0 * rate)


def lloyd_max(rate: float) -> float:
    """The best scalar quantizer's normalized MSE at `rate` bits per weight, Gaussian source.

    Integer rates are Lloyd-Max's; between them, time-sharing two widths (some weights at b bits, the rest at b + 1)
    is linear in D, the lower hull of the scalar points; below 1 bit it shares with rate 0 (D = 1); above 4 bits each
    extra bit divides D by 4 (the 6.02 dB-per-bit high-rate slope).
    """
    if rate <= 0:
        return 1.0
    points = {0: 1.0, **LLOYD_MAX_D}
    if rate >= 4:
        return LLOYD_MAX_D[4] * 4.0 ** -(rate - 4)
    lo = math.floor(rate)
    frac = rate - lo
    return (1 - frac) * points[lo] + frac * points[lo + 1]


def to_db(d: float) -> float:
    """A normalized MSE as SQNR in dB."""
    return -10.0 * math.log10(d)


def limits(rate: float | None, sqnr_db: float | None) -> dict | None:
    """Where a run sits against the Gaussian limits at its bits per weight: the distortion-rate bound and the best
    scalar quantizer, as SQNR (dB) and cosine (sqrt(1 - D)), and the run's gap to each (dB; positive = below)."""
    if not rate:
        return None
    bound, scalar = rd_bound(rate), lloyd_max(rate)
    out = {
        "bpw": rate,
        "bound_sqnr_db": to_db(bound),
        "bound_cosine": math.sqrt(1 - bound),
        "scalar_sqnr_db": to_db(scalar),
        "scalar_cosine": math.sqrt(1 - scalar),
    }
    out["gap_to_bound_db"] = None if sqnr_db is None else out["bound_sqnr_db"] - sqnr_db
    out["gap_to_scalar_db"] = None if sqnr_db is None else out["scalar_sqnr_db"] - sqnr_db
    return out
