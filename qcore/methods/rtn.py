"""Round-to-nearest (RTN) quantization, with an optional MSE-optimal clipping search; the report's INT8 and INT2."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

from ..errors import QcoreError
from ..progress import Progress
from .common import (
    check_bits,
    check_group_size,
    check_scales,
    prepare_weights,
    rotated,
    with_scale_dtype,
)
from .quant import CODE_BITS, QuantizedTensor, choose_qparams, quantize_affine, to_groups

BLOCK_ELEMS = 1 << 16  # weights per block: small enough that a block's temporaries stay in cache
CLIP_GRID = tuple(1.0 - 0.025 * i for i in range(29))  # range shrink factors tried by --clip: 1.0 .. 0.3
FIXED = {"fixed": True}


@dataclass(frozen=True)
class RTNConfig:
    bits: int = field(default=4, metadata={"choices": CODE_BITS})
    group_size: int = 0
    sym: bool = False
    clip: bool = False
    rotate: bool = False

    def __post_init__(self):
        check_bits(self.bits, CODE_BITS)
        check_group_size(self.group_size)
        for f in fields(self):
            if f.metadata.get("fixed") and getattr(self, f.name) != f.default:
                raise QcoreError(
                    f"{type(self).__name__} fixes {f.name}={f.default}; use RTNConfig to choose {f.name} freely"
                )


@dataclass(frozen=True)
class Int8Config(RTNConfig):
    """The reference report's PTQ INT8: 8-bit, per-channel, symmetric. Every option is fixed."""

    bits: int = field(default=8, metadata={"choices": CODE_BITS, **FIXED})
    group_size: int = field(default=0, metadata=FIXED)
    sym: bool = field(default=True, metadata=FIXED)
    clip: bool = field(default=False, metadata=FIXED)
    rotate: bool = field(default=False, metadata=FIXED)


@dataclass(frozen=True)
class Int2Config(RTNConfig):
    """The reference report's PTQ INT2: 2-bit, per-channel, asymmetric min-max. Every option is fixed."""

    bits: int = field(default=2, metadata={"choices": CODE_BITS, **FIXED})
    group_size: int = field(default=0, metadata=FIXED)
    sym: bool = field(default=False, metadata=FIXED)
    clip: bool = field(default=False, metadata=FIXED)
    rotate: bool = field(default=False, metadata=FIXED)


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
    check_scales(scale, scale_dtype)
    q = quantize_affine(Wg, scale, zero, cfg.bits).reshape(out, -1)  # (out, G*g)
    return (q if q.shape[1] == n else q[:, :n].contiguous()), scale, zero


def quantize_rtn(
    W: torch.Tensor, cfg: RTNConfig, *, H: torch.Tensor | None = None, progress: Progress | None = None
) -> QuantizedTensor:
    """Round-to-nearest quantization of a weight tensor (two or more dims, viewed as (out, in)). H is unused.

    Scales are float16 when every one fits float16's normal range, else float32. An asymmetric zero is an integer
    code stored as uint8; a symmetric zero is 2**(bits-1), stored once, and a symmetric scale is signed (see
    choose_qparams). A row that group_size does not divide is padded: its last group is shorter. With rotate, the
    codes quantize the rotated weights (rotation.py) and the tensor carries the rotation.
    """
    W2, rotation = rotated(prepare_weights(W), cfg.rotate)  # (out, in)
    q, scale, zero = with_scale_dtype(lambda dtype: _quantize_rows(W2, cfg, dtype))
    zero = zero[:1, :1].to(torch.uint8) if cfg.sym else zero.to(torch.uint8)
    return QuantizedTensor(q, scale, zero, cfg.bits, cfg.group_size, tuple(W.shape), rotation=rotation)
