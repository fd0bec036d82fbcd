"""Affine quantization primitives and the QuantizedTensor every method returns.

The affine convention, written once for the whole package:

    W_hat = (q - zero) * scale,   q integer in [0, 2**bits - 1]

`scale` and `zero` are per group: a group is `group_size` consecutive input columns of one
output row (group_size 0 means the whole row, i.e. per-channel). Symmetric quantization is the
special case zero = 2**(bits - 1) for every group, stored once. A method that departs from the
convention says so in its docstring (a code book replaces `q - zero` with `codebook[q]`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from ..errors import QcoreError

FP16_MAX = 65504.0
FP16_MIN_NORMAL = 2.0**-14


def check_bits(bits: int, allowed: tuple[int, ...], what: str = "bits") -> None:
    """A config's code width must be one of `allowed`; the message names the choices."""
    if bits not in allowed:
        raise QcoreError(f"{what} must be one of {', '.join(map(str, allowed))}; got {bits}")


def check_group_size(group_size: int) -> None:
    """0 (per-channel) or a positive number of input columns per scale."""
    if not isinstance(group_size, int) or group_size < 0:
        raise QcoreError(f"group_size must be 0 (per-channel) or a positive integer; got {group_size}")


def with_scale_dtype(quantize_rows: Callable[[torch.dtype], tuple]) -> tuple:
    """(q, scale, zero) from `quantize_rows(scale_dtype)`: float16 scales, or float32 ones where a scale leaves
    float16's normal range (the quantizer raises OverflowError, and the whole tensor is redone in float32)."""
    try:
        q, scale, zero = quantize_rows(torch.float16)
        return q, scale.half(), zero
    except OverflowError:
        return quantize_rows(torch.float32)


def as_matrix(W: torch.Tensor) -> torch.Tensor:
    """View a tensor of two or more dims as (out, in): a conv kernel (out, c, kh, kw) -> (out, c*kh*kw)."""
    if W.dim() < 2:
        raise QcoreError(f"only tensors with two or more dimensions are quantized, got shape {tuple(W.shape)}")
    return W.flatten(1)  # (out, in)


def num_groups(in_features: int, group_size: int) -> int:
    """Groups per row: 1 for per-channel (group_size 0 or >= in), else ceil(in / group_size)."""
    if group_size <= 0 or group_size >= in_features:
        return 1
    return -(-in_features // group_size)


def effective_group(in_features: int, group_size: int) -> int:
    """The group length actually used: the row length when per-channel."""
    return in_features if num_groups(in_features, group_size) == 1 else group_size


def to_groups(W: torch.Tensor, group_size: int) -> torch.Tensor:
    """(out, in) -> (out, G, g). A row that g does not divide is zero-padded at its end.

    Zero padding is neutral: every range this package chooses contains 0, and 0 maps to a code
    exactly, so padded entries quantize with no error and never reach the file.
    """
    out, n = W.shape
    g = effective_group(n, group_size)
    G = -(-n // g)
    if G * g != n:
        W = torch.nn.functional.pad(W, (0, G * g - n))  # (out, G*g)
    return W.reshape(out, G, g)  # (out, G, g)


@dataclass(frozen=True, eq=False)
class QuantizedTensor:
    """Integer codes plus what it takes to dequantize them.

    q:        (out, in) uint8 codes, one per weight, in [0, 2**bits - 1] (unpacked; storage packs them)
    scale:    (out, G) float16 or float32, one per group
    zero:     (out, G), or (1, 1) when it is the same for every group (symmetric); uint8 when integer,
              float16/float32 when a method optimises it as a real number (HQQ, SEQ's half-integers)
    codebook: optional (2**bits,) float32; when present W_hat = codebook[q] * scale and zero is unused
    shape:    the original tensor's shape (a conv kernel is restored from its (out, in) view)
    scale_q:  optional double quantization of the scales: a QuantizedTensor of shape (1, out * G) whose
              dequantization, reshaped to (out, G), equals `scale` exactly. Only scale_q is stored.
    """

    q: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor
    bits: int
    group_size: int
    shape: tuple[int, ...]
    method: str
    config: dict = field(default_factory=dict)
    codebook: torch.Tensor | None = None
    scale_q: QuantizedTensor | None = None

    @property
    def numel(self) -> int:
        return self.q.numel()

    def payload_bits(self) -> int:
        """Bits of packed codes: bits x weights (3-bit packs densely)."""
        return self.bits * self.numel


def choose_qparams(
    Wg: torch.Tensor, bits: int, sym: bool, shrink: float = 1.0, scale_dtype=torch.float16
) -> tuple[torch.Tensor, torch.Tensor]:
    """Min-max (asym) or absmax (sym) scale and zero for each group.

    Wg: (..., g) float32. Returns scale (...) rounded to `scale_dtype` and held as float32, and
    zero (...) float32 holding integers. The range always contains 0 (GPTQ's convention), so an
    all-positive row keeps an exact 0 and padding is neutral. `shrink` in (0, 1] narrows the range
    (the clipping search). A zero range gets scale 1, so the group dequantizes to exactly 0.
    """
    maxq = 2**bits - 1
    lo, hi = Wg.amin(dim=-1), Wg.amax(dim=-1)  # (...), (...): vectorised, unlike aminmax
    if sym:
        scale = torch.maximum(-lo, hi).mul_(shrink).div_(2 ** (bits - 1) - 1)
    else:
        lo = lo.clamp_(max=0).mul_(shrink)
        scale = hi.clamp_(min=0).mul_(shrink).sub_(lo).div_(maxq)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale)).to(scale_dtype).float()
    if sym:
        zero = torch.full_like(scale, 2 ** (bits - 1))
    else:
        zero = torch.round(-lo / scale).clamp_(0, maxq)
    return scale, zero


QUANT_BLOCK = 1 << 18  # weights per block in quantize_affine: a block and its buffer stay in cache


def quantize_affine(Wg: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    """q = clamp(round(W / scale) + zero, 0, 2**bits - 1) as uint8, same shape as Wg (..., g).

    scale, zero: (...). Works through Wg in blocks of groups with one reused float buffer, so it
    reads W once and writes each code once; the result equals the one-line formula exactly.
    """
    g = Wg.shape[-1]
    W2 = Wg.reshape(-1, g)  # (groups, g)
    s2, z2 = scale.reshape(-1, 1), zero.reshape(-1, 1)  # (groups, 1)
    q = torch.empty(W2.shape, dtype=torch.uint8)
    rows = max(1, QUANT_BLOCK // g)
    buf = torch.empty(min(rows, W2.shape[0]) * g)
    for r0 in range(0, W2.shape[0], rows):
        w = W2[r0 : r0 + rows]  # (r, g)
        b = buf[: w.numel()].view(w.shape)
        torch.div(w, s2[r0 : r0 + rows], out=b).round_().add_(z2[r0 : r0 + rows]).clamp_(0, 2**bits - 1)
        q[r0 : r0 + rows].copy_(b)
    return q.reshape(Wg.shape)


def slice_rows(qt: QuantizedTensor, r0: int, r1: int) -> QuantizedTensor:
    """Rows [r0, r1) of a quantized tensor, as a (r1 - r0, in) quantized tensor."""
    q = qt.q[r0:r1]
    zero = qt.zero if qt.zero.numel() == 1 else qt.zero[r0:r1]
    return replace(qt, q=q, scale=qt.scale[r0:r1], zero=zero, shape=tuple(q.shape), scale_q=None)


@dataclass(frozen=True, eq=False)
class MixedTensor:
    """Rows quantized at different widths: row r uses row_bits[r] bits.

    row_bits: (out,) uint8. parts: {bits: QuantizedTensor of the rows with that width, in ascending
    row order}, so no row index is stored beyond row_bits.
    """

    row_bits: torch.Tensor
    parts: dict[int, QuantizedTensor]
    shape: tuple[int, ...]
    method: str
    config: dict = field(default_factory=dict)

    @property
    def numel(self) -> int:
        return sum(p.numel for p in self.parts.values())

    @property
    def bits(self) -> float:
        """Mean code width over the tensor's weights."""
        return sum(b * p.numel for b, p in self.parts.items()) / max(self.numel, 1)

    def payload_bits(self) -> int:
        return sum(p.payload_bits() for p in self.parts.values())


def dequantize(qt: QuantizedTensor | MixedTensor) -> torch.Tensor:
    """W_hat in float32, with the original shape. The only dequantizer: memory and file share it."""
    if isinstance(qt, MixedTensor):
        W_hat = torch.empty(qt.row_bits.shape[0], qt.numel // max(qt.row_bits.shape[0], 1))  # (out, in)
        for b, part in qt.parts.items():
            W_hat[qt.row_bits == b] = dequantize(part).reshape(part.q.shape)
        return W_hat.reshape(qt.shape)
    out, n = qt.q.shape
    qg = to_groups(qt.q, qt.group_size)  # (out, G, g) uint8
    scale = qt.scale.float().unsqueeze(-1)  # (out, G, 1)
    if qt.codebook is not None:
        W_hat = qt.codebook.float()[qg.long()].mul_(scale)  # (out, G, g)
    else:
        W_hat = qg.float().sub_(qt.zero.float().unsqueeze(-1)).mul_(scale)  # (out, G, g), one buffer
    return W_hat.reshape(out, -1)[:, :n].reshape(qt.shape)
