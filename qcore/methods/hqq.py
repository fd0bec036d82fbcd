"""HQQ: half-quadratic quantization, a calibration-free optimisation of each group's zero (and scale).

Badri and Shaji, "Half-Quadratic Quantization of Large Machine Learning Models", mobiusml blog, 2023.
It minimises an lp-norm (p < 1) of the weight error, which tolerates a few large errors (outliers) in
exchange for small ones elsewhere, by half-quadratic splitting: an extra variable W_e stands for the
error, and the two sub-problems alternate in closed form, with the coupling weight beta growing.

With the package's affine convention W_hat = (q - zero) * scale (HQQ's code stores 1/scale instead):
    W_q  = clamp(round(W / scale + zero), 0, 2**bits - 1)
    W_e  = shrink_lp(W - (W_q - zero) * scale, beta)       the error as a sparse outlier term
    zero = mean over the group of (W_q - (W - W_e) / scale)  least squares for W - W_e = (W_q - zero) * scale
    beta = beta * kappa
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import QcoreError
from ..progress import Progress
from .common import (
    FP16_MAX,
    FP16_MIN_NORMAL,
    check_bits,
    check_group_size,
    check_scales,
    prepare_weights,
    rotated,
    round_,
    with_scale_dtype,
)
from .quant import CODE_BITS, QuantizedTensor, choose_qparams, to_groups

# Weights per row block. Below torch's parallel grain (32768) every op runs on the calling thread: on a
# busy machine a threaded op on a small block waits for time slices (measured 10-100x slower here).
BLOCK_ELEMS = 1 << 14
SHRINK_EPS = 1e-8  # keeps |x| ** (p - 1) finite at x = 0, as HQQ does


@dataclass(frozen=True)
class HQQConfig:
    bits: int = field(default=4, metadata={"choices": CODE_BITS})
    group_size: int = 64
    iters: int = 20
    lp_norm: float = 0.7
    beta: float = 10.0
    kappa: float = 1.01
    optimize_scale: bool = False
    rotate: bool = False

    def __post_init__(self):
        check_bits(self.bits, CODE_BITS)
        check_group_size(self.group_size)
        if not isinstance(self.iters, int) or self.iters < 0:
            raise QcoreError(f"iters must be a non-negative integer; got {self.iters}")
        if not 0 < self.lp_norm <= 1:
            raise QcoreError(f"lp_norm must be in (0, 1]; got {self.lp_norm}")
        if not 0 < self.beta < float("inf"):
            raise QcoreError(f"beta must be a positive number; got {self.beta}")
        if not 1 <= self.kappa < float("inf"):
            raise QcoreError(f"kappa must be a number >= 1; got {self.kappa}")


def shrink_lp(x: torch.Tensor, beta: float, p: float) -> torch.Tensor:
    """Generalized soft-threshold sign(x) max(|x| - |x|^(p-1) / beta, 0): HQQ's minimiser of |e|^p + beta/2 (e - x)^2."""
    a = x.abs()
    return a.sub_((a + SHRINK_EPS).pow_(p - 1).div_(beta)).relu_().copysign_(x)


def _round_to(scale: torch.Tensor, scale_dtype) -> torch.Tensor:
    """Round positive scales to `scale_dtype`, clamped into its normal range, held as float32."""
    if scale_dtype == torch.float16:
        scale = scale.clamp(FP16_MIN_NORMAL, FP16_MAX)
    return scale.to(scale_dtype).float()


def _masked_mean(x: torch.Tensor, mask: torch.Tensor | None, count: torch.Tensor | float) -> torch.Tensor:
    """Mean over the last dim of (..., g), counting only the real (unpadded) entries."""
    return (x if mask is None else x * mask).sum(-1) / count


# HQQ (Badri and Shaji 2023), the proximal solver of mobiusml/hqq's optimize_weights_proximal, re-derived
# for W_hat = (q - zero) * scale, per group and vectorised over all groups of a row block. Unlike HQQ,
# which stops when its mean absolute error stops falling, it runs all iterations and keeps, for each
# group, the (scale, zero) with the least squared error among min-max RTN, the unrounded start and every iterate.
def optimize_groups(
    Wg: torch.Tensor, mask: torch.Tensor | None, cfg: HQQConfig, scale_dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Best scale and zero for each group of Wg (rows, G, g) float32. mask: (G, g) 1.0 for real entries, 0.0 for
    padding, or None. Returns scale (rows, G) rounded to scale_dtype and zero (rows, G) rounded to float16,
    both held as float32. Raises OverflowError when a float16 min-max scale is out of float16's range.
    """
    maxq = 2**cfg.bits - 1
    count = float(Wg.shape[-1]) if mask is None else mask.sum(-1)  # real entries per group: (G,)
    scale, zero = choose_qparams(Wg, cfg.bits, False, 1.0, scale_dtype, integer_zero=False)  # (rows, G) each
    check_scales(scale, scale_dtype)
    W_s = Wg / scale.unsqueeze(-1)  # (rows, G, g) the weights in code units
    best_scale, best_zero = scale, zero.round()  # min-max RTN (integer zero): no group ends up worse
    best_err = _residual(W_s, scale, best_zero, mask, maxq)[1].square_().sum(-1)  # (rows, G)
    zero = zero.half().float()  # the unrounded start; zeros are stored as float16
    beta = cfg.beta
    for it in range(cfg.iters + 1):
        W_q, E = _residual(W_s, scale, zero, mask, maxq)  # (rows, G, g) each
        err = (E * E).sum(-1)  # (rows, G)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_scale, best_zero = torch.where(better, scale, best_scale), torch.where(better, zero, best_zero)
        if it == cfg.iters:
            break
        W_e = shrink_lp(E, beta, cfg.lp_norm)  # (rows, G, g) the error kept as outliers; 0 on padding
        if cfg.optimize_scale:
            scale, zero = _fit_scale_zero(W_q, Wg - W_e, mask, count, scale, scale_dtype)
            W_s = Wg / scale.unsqueeze(-1)  # (rows, G, g)
        else:  # zero = mean(W_q - (W - W_e) / scale), W / scale being W_s
            zero = _masked_mean(W_q.sub_(W_s), mask, count) + W_e.sum(-1) / count / scale  # (rows, G)
        zero = zero.half().float()
        beta *= cfg.kappa
    return best_scale, best_zero


def _residual(W_s, scale, zero, mask, maxq) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes W_q = clamp(round(W_s + zero)) and the error E = W - W_hat (0 on padding), both (rows, G, g)."""
    t = W_s + zero.unsqueeze(-1)  # (rows, G, g) unrounded codes
    W_q = round_(t.clone()).clamp_(0, maxq)  # (rows, G, g)
    E = t.sub_(W_q).mul_(scale.unsqueeze(-1))  # (rows, G, g) W - W_hat
    return W_q, E if mask is None else E.mul_(mask)


def _fit_scale_zero(W_q, target, mask, count, scale, scale_dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Least squares target = (W_q - zero) * scale per group (a line in W_q). Where the codes do not vary or
    the slope is not positive, only the zero is refit. Returns scale, zero (rows, G)."""
    mq, mt = _masked_mean(W_q, mask, count), _masked_mean(target, mask, count)  # (rows, G)
    dq, dt = W_q - mq.unsqueeze(-1), target - mt.unsqueeze(-1)  # (rows, G, g)
    var, cov = _masked_mean(dq * dq, mask, count), _masked_mean(dq * dt, mask, count)  # (rows, G)
    slope = cov / torch.where(var > 0, var, torch.ones_like(var))
    ok = (var > 0) & (slope > 0) & torch.isfinite(slope)
    new_scale = torch.where(ok, _round_to(torch.where(ok, slope, scale), scale_dtype), scale)
    return new_scale, mq - mt / new_scale


def _quantize_rows(W: torch.Tensor, cfg: HQQConfig, scale_dtype):
    """Optimise and quantize W (out, in) in row blocks. Returns q (out, in) uint8, scale (out, G), zero (out, G)."""
    out, n = W.shape
    Wg = to_groups(W, cfg.group_size)  # (out, G, g)
    G, g = Wg.shape[1:]
    mask = None
    if G * g != n:
        mask = torch.ones(G, g)  # (G, g)
        mask[-1, n - (G - 1) * g :] = 0.0
    rows = max(1, BLOCK_ELEMS // (G * g))
    maxq = 2**cfg.bits - 1
    q = torch.empty(out, G, g, dtype=torch.uint8)  # (out, G, g)
    scale, zero = torch.empty(out, G), torch.empty(out, G)  # (out, G)
    for r0 in range(0, out, rows):
        Wb = Wg[r0 : r0 + rows]  # (r, G, g)
        s, z = optimize_groups(Wb, mask, cfg, scale_dtype)  # (r, G), (r, G)
        t = torch.div(Wb, s.unsqueeze(-1)).add_(z.unsqueeze(-1))  # (r, G, g)
        q[r0 : r0 + rows] = round_(t).clamp_(0, maxq)
        scale[r0 : r0 + rows], zero[r0 : r0 + rows] = s, z
    q = q.reshape(out, G * g)  # (out, G*g)
    return (q if G * g == n else q[:, :n].contiguous()), scale, zero


def quantize_hqq(
    W: torch.Tensor, cfg: HQQConfig, *, H: torch.Tensor | None = None, progress: Progress | None = None
) -> QuantizedTensor:
    """Half-quadratic quantization of a weight tensor (two or more dims, viewed as (out, in)); no calibration.

    H is unused. Starts from min-max asymmetric RTN with the unrounded zero -min / scale (the hqq package's
    round_zero=False, which ends 2-3% lower in error at 2 bits than an integer start) and optimises each group's
    zero (with optimize_scale, its scale too) to minimise the lp-norm of the weight error. Per group it keeps the
    candidate with the least squared error among min-max RTN (integer zero), the start and every iterate, so no
    group ends up worse than min-max RTN.
    Codes are q = clamp(round(W / scale + zero), 0, 2**bits - 1): zero is a real number, rounded after it
    is added (not an integer code as in RTN). Returns q (out, in) uint8, scale (out, G) float16 (float32
    when a scale leaves float16's normal range), zero (out, G) float16, a real number, not an integer.
    """
    W2, rotation = rotated(prepare_weights(W), cfg.rotate)  # (out, in)
    q, scale, zero = with_scale_dtype(lambda dtype: _quantize_rows(W2, cfg, dtype))
    return QuantizedTensor(q, scale, zero.half(), cfg.bits, cfg.group_size, tuple(W.shape), rotation=rotation)
