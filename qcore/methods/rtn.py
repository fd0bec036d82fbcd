"""Round-to-nearest (RTN) quantization, with an optional MSE-optimal clipping search."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import QcoreError
from ..formats.packing import PACK_BITS
from .quant import (
    FP16_MAX,
    FP16_MIN_NORMAL,
    QuantizedTensor,
    as_matrix,
    check_bits,
    check_group_size,
    choose_qparams,
    quantize_affine,
    to_groups,
    with_scale_dtype,
)

BLOCK_ELEMS = 1 << 16  # weights per block: small enough that a block's temporaries stay in cache
CLIP_GRID = tuple(1.0 - 0.025 * i for i in range(29))  # range shrink factors tried by --clip: 1.0 .. 0.3


@dataclass(frozen=True)
class RTNConfig:
    bits: int = field(default=4, metadata={"help": "code width", "choices": PACK_BITS})
    group_size: int = field(default=0, metadata={"help": "input columns per scale; 0 = per-channel"})
    sym: bool = field(default=False, metadata={"help": "symmetric (zero fixed at 2**(bits-1)) instead of min-max"})
    clip: bool = field(default=False, metadata={"help": "search the range shrink that minimises each group's MSE"})

    def __post_init__(self):
        check_bits(self.bits, PACK_BITS)
        check_group_size(self.group_size)


def check_finite(W: torch.Tensor, name: str = "tensor") -> None:
    """Refuse NaN/Inf weights with counts: quantization refuses, it never masks."""
    if not bool(torch.isfinite(W.sum())) and not bool(torch.isfinite(W).all()):  # a cheap sum first
        nan = int(torch.isnan(W).sum())
        inf = int(torch.isinf(W).sum())
        raise QcoreError(
            f"{name} has {nan} NaN and {inf} Inf values; quantization refuses non-finite weights "
            "(repair the checkpoint or exclude the tensor)"
        )


def prepare_weights(W: torch.Tensor) -> torch.Tensor:
    """The checks every method starts with: a (out, in) float32 view of a non-empty, finite tensor."""
    W2 = as_matrix(W).float()  # (out, in)
    if W2.numel() == 0:
        raise QcoreError(f"cannot quantize an empty tensor of shape {tuple(W.shape)}")
    check_finite(W2)
    return W2


def _fits_fp16(scale: torch.Tensor) -> bool:
    return bool((scale.max() <= FP16_MAX) & (scale.min() >= FP16_MIN_NORMAL))


def _clip_qparams(Wg: torch.Tensor, bits: int, sym: bool, scale_dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Per group, the shrink in CLIP_GRID whose quantization has the least squared error."""
    best = torch.full(Wg.shape[:-1], float("inf"))
    scale = zero = None
    for p in CLIP_GRID:
        s, z = choose_qparams(Wg, bits, sym, p, scale_dtype)
        q = quantize_affine(Wg, s, z, bits)
        err = ((q.float() - z.unsqueeze(-1)).mul_(s.unsqueeze(-1)).sub_(Wg)).square_().sum(-1)  # (...)
        better = err < best
        best = torch.where(better, err, best)
        scale = s if scale is None else torch.where(better, s, scale)
        zero = z if zero is None else torch.where(better, z, zero)
    return scale, zero


def _quantize_rows(W: torch.Tensor, cfg: RTNConfig, scale_dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Quantize (out, in). Returns q (out, in) uint8, scale (out, G), zero (out, G)."""
    out, n = W.shape
    Wg = to_groups(W, cfg.group_size)  # (out, G, g)
    if cfg.clip:
        rows = max(1, BLOCK_ELEMS // (Wg.shape[1] * Wg.shape[2]))
        parts = [_clip_qparams(Wg[r0 : r0 + rows], cfg.bits, cfg.sym, scale_dtype) for r0 in range(0, out, rows)]
        scale, zero = torch.cat([s for s, _ in parts]), torch.cat([z for _, z in parts])  # (out, G)
    else:
        scale, zero = choose_qparams(Wg, cfg.bits, cfg.sym, 1.0, scale_dtype)  # (out, G)
    if scale_dtype == torch.float16 and not _fits_fp16(scale):
        raise OverflowError
    if not bool(torch.isfinite(scale).all()):
        raise QcoreError("the weights' range overflows float32 (values near 3.4e38); rescale the tensor first")
    q = quantize_affine(Wg, scale, zero, cfg.bits).reshape(out, -1)  # (out, G*g)
    return (q if q.shape[1] == n else q[:, :n].contiguous()), scale, zero


def quantize_rtn(W: torch.Tensor, cfg: RTNConfig, method: str = "rtn") -> QuantizedTensor:
    """Round-to-nearest quantization of a weight tensor (two or more dims, viewed as (out, in)).

    Scales are float16 when every one fits float16's normal range, else float32. An asymmetric
    zero is an integer code stored as uint8; a symmetric zero is 2**(bits-1), stored once.
    A row that group_size does not divide is padded: its last group is shorter.
    """
    W2 = prepare_weights(W)  # (out, in)
    q, scale, zero = with_scale_dtype(lambda dtype: _quantize_rows(W2, cfg, dtype))
    zero = zero[:1, :1].to(torch.uint8) if cfg.sym else zero.to(torch.uint8)
    config = {"bits": cfg.bits, "group_size": cfg.group_size, "sym": cfg.sym, "clip": cfg.clip}
    return QuantizedTensor(q, scale, zero, cfg.bits, cfg.group_size, tuple(W.shape), method, config)
