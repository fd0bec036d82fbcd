"""NF4: the 4-bit NormalFloat code book of QLoRA, with absmax block scales and optional double quantization.

Dettmers, Pagnoni, Holtzman, Zettlemoyer, "QLoRA: Efficient Finetuning of Quantized LLMs", NeurIPS 2023
(arXiv:2305.14314), section 3. NF4's 16 values are quantiles of N(0, 1), normalised to [-1, 1], with an
exact 0 (8 positive and 7 negative levels). Each block of `group_size` weights is divided by its absmax,
and every weight takes the index of the nearest code value.

A code book method: W_hat = (codebook[q] - zero) * scale with zero = 0 (stored once as a uint8) and scale the
block's absmax (float32, as QLoRA keeps it).

Double quantization (QLoRA's "DQ") stores the absmax values themselves in 8 bits: blocks of 256 of them, each
block divided by its own absmax and coded with the 8-bit dynamic (tree) code of Dettmers 2016 ("8-bit
approximations for parallelism in deep learning", as bitsandbytes' create_dynamic_map builds it: 0, 1, and per
decade 10^-6 .. 1 an even split, finer towards 1). QLoRA subtracts the mean absmax first and codes the signed
remainder; that is accurate when the block maxima are alike and poor when a few rows are far larger (their
remainder sets the block's step, and small maxima lose most of their digits). Both are tried, and the one with
the lower mean squared relative error of the absmax values is kept (every block counts alike, so an outlier row
cannot buy its precision with the others'); the offset is stored as the nested zero, so
absmax = (code[q] - zero) * scale with zero = -offset / scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import QcoreError
from ..progress import Progress
from .common import check_group_size, prepare_weights
from .quant import QuantizedTensor, to_groups

# The published NF4 values (QLoRA appendix E; bitsandbytes), each exact in float32.
NF4_CODES = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)  # fmt: skip
DQ_BLOCK = 256  # absmax values per block of the double quantization (QLoRA's)
BLOCK_ELEMS = 1 << 20  # weights per row block when choosing codes (bounds the int64 index buffer)


@dataclass(frozen=True)
class NF4Config:
    group_size: int = 64
    double_quant: bool = False
    bits: int = field(default=4, metadata={"choices": (4,), "fixed": True})

    def __post_init__(self):
        check_group_size(self.group_size)
        if self.bits != 4:
            raise QcoreError(f"nf4 is a 4-bit code book; bits must be 4, got {self.bits} (use rtn for other widths)")


def nf4_codebook() -> torch.Tensor:
    """The 16 NF4 values, ascending, as a new (16,) float32 tensor."""
    return torch.tensor(NF4_CODES, dtype=torch.float32)


def dynamic_codebook(signed: bool) -> torch.Tensor:
    """The 256 values of the 8-bit dynamic code, ascending, (256,) float32: 0, 1, and for i = 0..6 the midpoints
    of an even split of [0.1, 1] into 2**i parts (signed: each with both signs) or 2**(i+1) parts (unsigned),
    times 10**(i - 6)."""
    values = [0.0, 1.0]
    for i in range(7):
        parts = 2**i if signed else 2 ** (i + 1)
        mids = [(0.1 + 0.9 * (k + 0.5) / parts) * 10.0 ** (i - 6) for k in range(parts)]
        values += mids + ([-m for m in mids] if signed else [])
    return torch.tensor(sorted(values), dtype=torch.float32)


def nearest_code(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest value of an ascending code book for each x, as uint8, same shape as x.

    Decision boundaries are the float32 midpoints of neighbouring values; an x exactly on one goes to the
    lower value. Values beyond either end take the end's index.
    """
    mid = (codebook[1:] + codebook[:-1]) / 2  # (len - 1,)
    flat = x.reshape(-1)
    q = torch.empty(flat.shape, dtype=torch.uint8)
    for i0 in range(0, flat.numel(), BLOCK_ELEMS):
        q[i0 : i0 + BLOCK_ELEMS] = torch.searchsorted(mid, flat[i0 : i0 + BLOCK_ELEMS])
    return q.reshape(x.shape)


def quantize_absmax(absmax: torch.Tensor, offset: float) -> QuantizedTensor:
    """absmax (1, N) float32 - offset, coded with the dynamic code (signed when offset != 0) in blocks of DQ_BLOCK.

    Returns a (1, N) QuantizedTensor whose dequantization (code[q] - zero) * scale approximates absmax: scale
    (1, B) float32 block maxima of |absmax - offset| (1 where a block is all offset), zero (1, B) float32
    -offset / scale (0 when offset is 0: the same layout either way, so sizes never depend on the choice).
    """
    n = absmax.shape[1]
    codebook = dynamic_codebook(signed=offset != 0)
    x = to_groups(absmax - offset, DQ_BLOCK)  # (1, B, b) zero-padded: padding never raises a block's maximum
    scale = x.abs().amax(-1)  # (1, B)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = nearest_code(x / scale.unsqueeze(-1), codebook).reshape(1, -1)[:, :n].contiguous()  # (1, N)
    zero = -offset / scale  # (1, B)
    return QuantizedTensor(q, scale, zero, 8, DQ_BLOCK, (1, n), "dynamic8", {}, codebook)


def encode_blocks(Wg: torch.Tensor, scale: torch.Tensor, n: int) -> torch.Tensor:
    """NF4 codes (out, n) for Wg (out, G, g) against block scales (out, G); a zero scale codes its block as 0."""
    safe = torch.where(scale != 0, scale, torch.ones_like(scale)).unsqueeze(-1)  # (out, G, 1)
    x = torch.where(scale.unsqueeze(-1) != 0, Wg / safe, torch.zeros(()))  # (out, G, g) in [-1, 1]
    return nearest_code(x, nf4_codebook()).reshape(Wg.shape[0], -1)[:, :n].contiguous()  # (out, n)


def quantize_nf4(
    W: torch.Tensor, cfg: NF4Config, *, H: torch.Tensor | None = None, progress: Progress | None = None
) -> QuantizedTensor:
    """NF4 quantization of a weight tensor (two or more dims, viewed as (out, in)); no calibration, H is unused.

    Returns q (out, in) uint8 indices into codebook (16,) float32, scale (out, G) float32 absmax per block,
    zero (1, 1) uint8 0. A block of zeros keeps absmax 0 and dequantizes to zeros. A row that group_size does not
    divide has a shorter last block.

    With double_quant the absmax values, viewed as (1, out * G), go into scale_q (see the module docstring);
    scale is then their dequantization, and the codes are chosen against that dequantized absmax, so the stored
    tensor and the one in memory dequantize identically.
    """
    W2 = prepare_weights(W)  # (out, in)
    out, n = W2.shape
    Wg = to_groups(W2, cfg.group_size)  # (out, G, g)
    absmax = Wg.abs().amax(dim=-1)  # (out, G)
    zero = torch.zeros((1, 1), dtype=torch.uint8)
    if not cfg.double_quant:
        return QuantizedTensor(encode_blocks(Wg, absmax, n), absmax, zero, 4, cfg.group_size, tuple(W.shape),
                               codebook=nf4_codebook())  # fmt: skip
    candidates = [quantize_absmax(absmax.reshape(1, -1), offset) for offset in (0.0, float(absmax.mean()))]
    scale_q = min(candidates, key=lambda c: relative_error(c.dequantize().reshape(absmax.shape), absmax))
    scale = scale_q.dequantize().reshape(absmax.shape)  # (out, G)
    return QuantizedTensor(encode_blocks(Wg, scale, n), scale, zero, 4, cfg.group_size, tuple(W.shape),
                           codebook=nf4_codebook(), scale_q=scale_q)  # fmt: skip


def relative_error(approx: torch.Tensor, exact: torch.Tensor) -> float:
    """Mean squared relative error over the nonzero entries: every block counts alike, however small its maximum."""
    nonzero = exact != 0
    return (
        float(((approx[nonzero] - exact[nonzero]) / exact[nonzero]).double().square().mean()) if nonzero.any() else 0.0
    )
