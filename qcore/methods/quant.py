"""Affine quantization primitives, and the quantized tensor types every method returns.

The affine convention, written once for the whole package:

    W_hat = (q - zero) * scale,   q integer in [0, 2**bits - 1]

`scale` and `zero` are per group: a group is `group_size` consecutive input columns of one output row
(group_size 0 means the whole row, i.e. per-channel). Symmetric quantization is the special case
zero = 2**(bits - 1) for every group, stored once. A code book replaces the integer code with a value:
W_hat = (codebook[q] - zero) * scale. A method that departs from the convention in any other way says so in
its docstring (SEQ's zero is a half-integer, HQQ's a real number).

Every method returns a `Quantized`: a `QuantizedTensor` (one grid per group) or a `MixedTensor` (rows at
different widths). Both dequantize, slice by rows, and count their payload the same way. A quantized tensor may
carry an incoherence `Rotation` (rotation.py): its codes then describe W_rot = (H_m S_U) W (H_n S_V)^T, and
dequantization undoes the rotation after the affine step.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from .rotation import Rotation

CODE_BITS = (2, 3, 4, 8)  # the widths of affine codes the methods offer
QUANT_BLOCK = 1 << 18  # weights per block in quantize_affine: a block and its buffer stay in cache


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

    Zero padding is neutral where a method's grid holds 0 exactly (min-max and absmax ranges always contain 0);
    padded entries never reach the file.
    """
    out, n = W.shape
    g = effective_group(n, group_size)
    G = -(-n // g)
    if G * g != n:
        W = torch.nn.functional.pad(W, (0, G * g - n))  # (out, G*g)
    return W.reshape(out, G, g)  # (out, G, g)


class Quantized:
    """What every method's result offers, whatever its layout (QuantizedTensor, MixedTensor).

    shape: the original tensor's shape; method, config: stamped by the registry (the method's name and its
    config as a dict); numel, bits (mean code width), payload_bits(); dequantize() -> W_hat (float32, shape);
    rows(r0, r1): output rows [r0, r1) as the same kind of object, for measuring without a full W_hat.
    """

    shape: tuple[int, ...]
    method: str
    config: dict

    @property
    def row_local(self) -> bool:
        """Whether rows(r0, r1) is cheap (a rotated tensor mixes all rows: each row needs the whole decode)."""
        return True

    @property
    def numel(self) -> int:
        raise NotImplementedError

    def payload_bits(self) -> int:
        raise NotImplementedError

    def dequantize(self) -> torch.Tensor:
        raise NotImplementedError

    def rows(self, r0: int, r1: int) -> Quantized:
        raise NotImplementedError

    def stamped(self, method: str, config: dict) -> Quantized:
        """The same codes, labelled with the method and config that made them."""
        return replace(self, method=method, config=config)


@dataclass(frozen=True, eq=False)
class QuantizedTensor(Quantized):
    """Integer codes plus what it takes to dequantize them.

    q:        (out, in) uint8 codes, one per weight, in [0, 2**bits - 1] (unpacked; storage packs them)
    scale:    (out, G) float16 or float32, one per group (negative where a symmetric grid puts its extra level
              on the positive side; 0 only for an all-zero group of a method without a zero level)
    zero:     (out, G), or (1, 1) when it is the same for every group (symmetric); uint8 when integer,
              float16/float32 when a method optimises it as a real number (HQQ, SEQ's half-integers)
    codebook: optional (2**bits,) float32; when present W_hat = (codebook[q] - zero) * scale
    shape:    the original tensor's shape (a conv kernel is restored from its (out, in) view)
    scale_q:  optional double quantization of the scales: a QuantizedTensor of shape (1, out * G) whose
              dequantization, reshaped to (out, G), equals `scale` exactly. Only scale_q is stored.
    rotation: optional incoherence transform: the codes quantize the rotated weights, and dequantize undoes it.
    """

    q: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor
    bits: int
    group_size: int
    shape: tuple[int, ...]
    method: str = ""
    config: dict = field(default_factory=dict)
    codebook: torch.Tensor | None = None
    scale_q: QuantizedTensor | None = None
    rotation: Rotation | None = None

    @property
    def row_local(self) -> bool:
        return self.rotation is None

    @property
    def numel(self) -> int:
        return self.q.numel()

    def payload_bits(self) -> int:
        """Bits of packed codes: bits x weights (3-bit packs densely)."""
        return self.bits * self.numel

    def dequantize(self) -> torch.Tensor:
        out, n = self.q.shape
        qg = to_groups(self.q, self.group_size)  # (out, G, g) uint8
        scale = self.scale.float().unsqueeze(-1)  # (out, G, 1)
        zero = self.zero.float().unsqueeze(-1)  # (out, G, 1) or (1, 1, 1)
        values = self.codebook.float()[qg.long()] if self.codebook is not None else qg.float()  # (out, G, g)
        W_hat = values.sub_(zero).mul_(scale).reshape(out, -1)[:, :n]  # (out, in), one buffer
        if self.rotation is not None:
            W_hat = self.rotation.undo(W_hat.contiguous())  # (out, in) back from the rotated basis
        return W_hat.reshape(self.shape)

    def rows(self, r0: int, r1: int) -> QuantizedTensor:
        if self.rotation is not None:
            raise ValueError("a rotated tensor mixes all rows: dequantize it whole")
        q = self.q[r0:r1]
        zero = self.zero if self.zero.numel() == 1 else self.zero[r0:r1]
        return replace(self, q=q, scale=self.scale[r0:r1], zero=zero, shape=tuple(q.shape), scale_q=None)


@dataclass(frozen=True, eq=False)
class MixedTensor(Quantized):
    """Rows quantized at different widths: row r uses row_bits[r] bits.

    row_bits: (out,) uint8. parts: {bits: QuantizedTensor of the rows with that width, in ascending row order},
    so no row index is stored beyond row_bits.
    """

    row_bits: torch.Tensor
    parts: dict[int, QuantizedTensor]
    shape: tuple[int, ...]
    method: str = ""
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

    def dequantize(self) -> torch.Tensor:
        out = self.row_bits.shape[0]
        W_hat = torch.empty(out, self.numel // max(out, 1))  # (out, in)
        for b, part in self.parts.items():
            W_hat[self.row_bits == b] = part.dequantize().reshape(part.q.shape)
        return W_hat.reshape(self.shape)

    def rows(self, r0: int, r1: int) -> MixedTensor:
        parts = {}
        for b, part in self.parts.items():
            before, inside = int((self.row_bits[:r0] == b).sum()), int((self.row_bits[r0:r1] == b).sum())
            if inside:
                parts[b] = part.rows(before, before + inside)
        row_bits = self.row_bits[r0:r1]
        return replace(self, row_bits=row_bits, parts=parts, shape=(len(row_bits), *self.shape[1:]))

    def stamped(self, method: str, config: dict) -> MixedTensor:
        parts = {b: p.stamped(method, config) for b, p in self.parts.items()}
        return replace(self, parts=parts, method=method, config=config)


def dequantize(qt: Quantized) -> torch.Tensor:
    """W_hat in float32, with the original shape. The only dequantizer: memory and file share it."""
    return qt.dequantize()


def choose_qparams(
    Wg: torch.Tensor,
    bits: int,
    sym: bool,
    shrink: float = 1.0,
    scale_dtype: torch.dtype = torch.float16,
    integer_zero: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Min-max (asym) or signed-absmax (sym) scale and zero for each group.

    Wg: (..., g) float32. Returns scale (...) rounded to `scale_dtype` and held as float32, and zero (...) float32.
    Asymmetric: the range [min(lo, 0), max(hi, 0)] (GPTQ's convention, so an all-positive row keeps an exact 0
    and padding is neutral) over 2**bits - 1 steps; zero = -lo / scale, rounded to an integer code unless
    `integer_zero` is False (HQQ starts from the real number). Symmetric: all 2**bits levels, as llama.cpp's Q4_0:
    scale = m / -2**(bits-1), m the group's value of largest magnitude, so m itself is the level -2**(bits-1)
    steps from zero and is hit exactly; zero = 2**(bits-1). `shrink` in (0, 1] narrows the range (the clipping
    search). A zero range gets scale 1, so the group dequantizes to exactly 0.
    """
    maxq = 2**bits - 1
    lo, hi = Wg.amin(dim=-1), Wg.amax(dim=-1)  # (...), (...): vectorised, unlike aminmax
    if sym:
        signed_max = torch.where(hi >= -lo, hi, lo)  # (...) the extreme of largest magnitude, with its sign
        scale = signed_max.mul_(shrink).div_(-(2 ** (bits - 1)))
    else:
        lo = lo.clamp_(max=0).mul_(shrink)
        scale = hi.clamp_(min=0).mul_(shrink).sub_(lo).div_(maxq)
    scale = torch.where(scale != 0, scale, torch.ones_like(scale)).to(scale_dtype).float()
    if sym:
        zero = torch.full_like(scale, 2 ** (bits - 1))
    else:
        zero = (-lo / scale).clamp_(0, maxq)
        if integer_zero:
            zero = zero.round_()
    return scale, zero


def quantize_affine(Wg: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    """q = clamp(round(W / scale) + zero, 0, 2**bits - 1) as uint8, same shape as Wg (..., g).

    scale, zero: (...). Works through Wg in blocks of groups with one reused float buffer, so it reads W once
    and writes each code once; the result equals the one-line formula exactly.
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
