"""A straightforward RTN in torch, as most scripts write it: whole-tensor ops, one temporary per step.

It computes the same codes as qcore's RTN (tests check that exactly), so the benchmark compares
speed for identical results. Group-wise scales come from viewing (out, in) as (out * in / g, g)
and quantizing those rows per-channel.
"""

import torch


def baseline_rtn(W: torch.Tensor, bits: int, group_size: int = 0, sym: bool = False):
    """Returns (q uint8 (out, in), scale (rows,) float16, zero (rows,))."""
    maxq = 2**bits - 1
    Wg = W.reshape(-1, group_size) if group_size else W  # (out * in / g, g) or (out, in)
    if sym:  # the signed extreme of largest magnitude over -2**(bits-1) steps (llama.cpp's Q4_0)
        lo, hi = Wg.min(dim=1, keepdim=True).values, Wg.max(dim=1, keepdim=True).values
        scale = torch.where(hi.abs() >= lo.abs(), hi, lo) / -(2 ** (bits - 1))
        zero = torch.full_like(scale, 2 ** (bits - 1))
    else:
        xmin = Wg.min(dim=1, keepdim=True).values.clamp(max=0)
        xmax = Wg.max(dim=1, keepdim=True).values.clamp(min=0)
        scale = (xmax - xmin) / maxq
    scale = torch.where(scale != 0, scale, torch.ones_like(scale)).half().float()
    if not sym:
        zero = torch.round(-xmin / scale).clamp(0, maxq)
    q = torch.clamp(torch.round(Wg / scale) + zero, 0, maxq).to(torch.uint8)
    return q.reshape(W.shape), scale.half().reshape(-1), zero.reshape(-1)
