"""SEQ: AngelSlim-style 2-bit with half-integer levels {-1.5, -0.5, 0.5, 1.5} x scale.

Departs from the integer-zero convention: zero = (2**bits - 1) / 2 is a half-integer shared by every
group (stored once, float16), so W_hat = (q - 1.5) * scale at 2 bits and no level sits at 0 — the
symmetric grid that suits bell-shaped weights. An all-zero group therefore gets scale 0 (so it dequantizes
to exactly 0). Scales are float16 where they fit its normal range, else float32 for the whole tensor. The scale is searched per group (PTQ): a grid of
candidate scales, then alternating least-squares refinement (assign codes, then solve the scale in
closed form). Quantization-aware training can refine it further where a model can be trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import QcoreError
from ..progress import Progress
from .common import check_bits, check_group_size, prepare_weights, store_scales
from .quant import QuantizedTensor, to_groups

SEQ_BITS = (2, 3, 4)
SCALE_GRID = tuple(0.30 + 0.10 * i for i in range(8))  # x absmax / (2**(bits-1) - 0.5): 0.3 .. 1.0
BLOCK_ELEMS = 1 << 18


@dataclass(frozen=True)
class SEQConfig:
    bits: int = field(default=2, metadata={"choices": SEQ_BITS})
    group_size: int = 64
    refine: int = 4
    qat_steps: int = 200
    qat_lr: float = 1e-4

    def __post_init__(self):
        check_bits(self.bits, SEQ_BITS, "seq bits")
        check_group_size(self.group_size)
        if self.refine < 0:
            raise QcoreError(f"refine must be >= 0; got {self.refine}")
        if self.qat_steps < 0 or not self.qat_lr > 0:
            raise QcoreError(f"qat_steps must be >= 0 and qat_lr > 0; got {self.qat_steps}, {self.qat_lr}")


def half_zero(bits: int) -> float:
    """The shared half-integer zero: 1.5 at 2 bits, 3.5 at 3 bits, 7.5 at 4 bits."""
    return (2**bits - 1) / 2


def seq_codes(Wg: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """Nearest half-integer level: q = clamp(floor(W / scale) + 2**(bits-1), 0, 2**bits - 1). Wg (..., g), scale (...).

    A zero scale (an all-zero group) codes its weights as if the scale were 1: every level times 0 is 0.
    """
    safe = torch.where(scale != 0, scale, torch.ones_like(scale))
    q = torch.floor(Wg / safe.unsqueeze(-1)).add_(2 ** (bits - 1))
    return q.clamp_(0, 2**bits - 1).to(torch.uint8)


def _levels(Wg: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """The nearest half-integer level of each weight, in units of scale (float32, same shape as Wg)."""
    half = 2 ** (bits - 1)
    return torch.floor(Wg / scale.unsqueeze(-1)).clamp_(-half, half - 1).add_(0.5)


def _sq_error(Wg, scale, bits):
    lv = _levels(Wg, scale, bits)
    err = (lv * scale.unsqueeze(-1)).sub_(Wg).square_().sum(-1)
    return err, lv


def search_scale(Wg: torch.Tensor, bits: int, refine: int) -> torch.Tensor:
    """Per-group MSE scale for half-integer levels. Wg (..., g) -> scale (...) float32, > 0, or 0 for a group of zeros."""
    top = 2 ** (bits - 1) - 0.5  # the outermost level, in units of scale
    amax = Wg.abs().amax(-1)  # (...)
    zeros = amax == 0
    amax = torch.where(zeros, torch.ones_like(amax), amax)
    best_err, best = None, None
    for p in SCALE_GRID:
        s = amax * (p / top)
        err, _ = _sq_error(Wg, s, bits)
        if best is None:
            best_err, best = err, s
        else:
            better = err < best_err
            best_err, best = torch.where(better, err, best_err), torch.where(better, s, best)
    for _ in range(refine):
        lv = _levels(Wg, best, bits)  # (..., g) levels in units of scale
        s = (Wg * lv).sum(-1) / lv.square().sum(-1)  # least-squares scale for these codes
        s = torch.where(torch.isfinite(s) & (s > 0), s, best)
        err, _ = _sq_error(Wg, s, bits)
        better = err < best_err
        best_err, best = torch.where(better, err, best_err), torch.where(better, s, best)
    return best.masked_fill_(zeros, 0.0)


def _search_rows(Wg: torch.Tensor, cfg: SEQConfig) -> torch.Tensor:
    """search_scale over (out, G, g) in blocks of rows, to bound temporaries. Returns (out, G)."""
    rows = max(1, BLOCK_ELEMS // max(Wg.shape[1] * Wg.shape[2], 1))
    return torch.cat([search_scale(Wg[r : r + rows], cfg.bits, cfg.refine) for r in range(0, Wg.shape[0], rows)])


def quantize_seq(
    W: torch.Tensor, cfg: SEQConfig, *, H: torch.Tensor | None = None, progress: Progress | None = None
) -> QuantizedTensor:
    """SEQ post-training quantization; H is unused. Returns codes (out, in) uint8, scales (out, G) float16 (float32
    when one leaves float16's normal range), zero (1, 1) float16, the half-integer (2**bits - 1) / 2."""
    W2 = prepare_weights(W)  # (out, in)
    out, n = W2.shape
    Wg = to_groups(W2, cfg.group_size)  # (out, G, g)
    g = Wg.shape[2]
    full = n // g * g  # a shorter last group is searched on its own: padding is not neutral without a 0 level
    scale = _search_rows(W2[:, :full].reshape(out, -1, g), cfg)  # (out, n // g)
    if full < n:
        scale = torch.cat([scale, _search_rows(W2[:, full:].reshape(out, 1, -1), cfg)], dim=1)  # (out, G)
    scale = store_scales(scale, allow_zero=True)  # (out, G)
    q = seq_codes(Wg, scale.float(), cfg.bits).reshape(out, -1)[:, :n].contiguous()  # (out, in)
    zero = torch.full((1, 1), half_zero(cfg.bits), dtype=torch.float16)
    return QuantizedTensor(q, scale, zero, cfg.bits, cfg.group_size, tuple(W.shape))
