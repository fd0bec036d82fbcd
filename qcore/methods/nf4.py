"""NF4: the 4-bit NormalFloat code book of QLoRA, with absmax block scales and optional double quantization.

Dettmers, Pagnoni, Holtzman, Zettlemoyer, "QLoRA: Efficient Finetuning of Quantized LLMs", NeurIPS 2023
(arXiv:2305.14314), section 3. NF4's 16 values are quantiles of N(0, 1), normalised to [-1, 1], with an
exact 0 (8 positive and 7 negative levels). Each block of `group_size` weights is divided by its absmax,
and every weight takes the index of the nearest code value.

This departs from the affine convention (W_hat = (q - zero) * scale): here W_hat = codebook[q] * scale,
scale is the block's absmax (float32, as QLoRA keeps it), and zero is unused (stored as a (1, 1) uint8 0).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from ..errors import QcoreError
from .quant import QuantizedTensor, check_group_size, dequantize, to_groups
from .rtn import RTNConfig, prepare_weights, quantize_rtn

# The published NF4 values (QLoRA appendix E; bitsandbytes), each exact in float32.
NF4_CODES = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)  # fmt: skip
DQ_CONFIG = RTNConfig(bits=8, group_size=256)  # double quantization of the absmax values
BLOCK_ELEMS = 1 << 20  # weights per row block when choosing codes (bounds the int64 index buffer)


@dataclass(frozen=True)
class NF4Config:
    group_size: int = field(default=64, metadata={"help": "weights per absmax block; 0 = one block per row"})
    double_quant: bool = field(
        default=False, metadata={"help": "quantize the absmax scales too (8-bit, blocks of 256), as QLoRA"}
    )
    bits: int = field(default=4, metadata={"help": "code width (NF4 is a 4-bit code book)", "choices": (4,)})

    def __post_init__(self):
        check_group_size(self.group_size)
        if self.bits != 4:
            raise QcoreError(f"nf4 is a 4-bit code book; bits must be 4, got {self.bits} (use rtn for other widths)")


def nf4_codebook() -> torch.Tensor:
    """The 16 NF4 values, ascending, as a new (16,) float32 tensor."""
    return torch.tensor(NF4_CODES, dtype=torch.float32)


def nearest_code(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest value of an ascending code book for each x, as uint8, same shape as x.

    Decision boundaries are the float32 midpoints of neighbouring values; an x exactly on one goes to the
    lower value. Values beyond either end take the end's index.
    """
    mid = (codebook[1:] + codebook[:-1]) / 2  # (15,)
    flat = x.reshape(-1)
    q = torch.empty(flat.shape, dtype=torch.uint8)
    for i0 in range(0, flat.numel(), BLOCK_ELEMS):
        q[i0 : i0 + BLOCK_ELEMS] = torch.searchsorted(mid, flat[i0 : i0 + BLOCK_ELEMS])
    return q.reshape(x.shape)


def quantize_nf4(W: torch.Tensor, cfg: NF4Config) -> QuantizedTensor:
    """NF4 quantization of a weight tensor (two or more dims, viewed as (out, in)); no calibration.

    Returns q (out, in) uint8 indices into codebook (16,) float32, scale (out, G) float32 absmax per block,
    zero (1, 1) uint8 (unused). A block of zeros keeps absmax 0 and dequantizes to zeros. A row that
    group_size does not divide has a shorter last block.

    With double_quant the absmax values, viewed as (1, out * G), are quantized by RTN (8-bit, min-max,
    groups of 256) into scale_q; scale is then their dequantization, and the codes are chosen against
    that dequantized absmax, so the stored tensor and the one in memory dequantize identically.
    """
    W2 = prepare_weights(W)  # (out, in)
    out, n = W2.shape
    Wg = to_groups(W2, cfg.group_size)  # (out, G, g)
    scale = Wg.abs().amax(dim=-1)  # (out, G) absmax
    scale_q = None
    if cfg.double_quant:
        scale_q = quantize_rtn(scale.reshape(1, -1), DQ_CONFIG)  # (1, out * G)
        scale = dequantize(scale_q).reshape(scale.shape)  # (out, G)
    codebook = nf4_codebook()
    safe = torch.where(scale > 0, scale, torch.ones_like(scale)).unsqueeze(-1)  # (out, G, 1)
    x = torch.where(scale.unsqueeze(-1) > 0, Wg / safe, torch.zeros(()))  # (out, G, g) in [-1, 1]
    q = nearest_code(x, codebook).reshape(out, -1)[:, :n].contiguous()  # (out, in)
    zero = torch.zeros((1, 1), dtype=torch.uint8)
    return QuantizedTensor(q, scale, zero, 4, cfg.group_size, tuple(W.shape), "nf4", asdict(cfg), codebook, scale_q)
