"""Looking inside one quantized layer: a row's weights and the levels its codes can take."""

from __future__ import annotations

import torch

from ..errors import QcoreError
from ..methods.common import as_matrix
from ..methods.quant import QuantizedTensor, effective_group


def group_levels(qt: QuantizedTensor, row: int, group: int = 0) -> torch.Tensor:
    """The 2**bits values W_hat can take in one group of one row, indexed by code (float32)."""
    out, n = qt.q.shape
    G = qt.scale.shape[1]
    if not (0 <= row < out and 0 <= group < G):
        raise QcoreError(f"row {row}, group {group} is outside a tensor with {out} rows and {G} groups")
    values = qt.codebook.float() if qt.codebook is not None else torch.arange(2**qt.bits, dtype=torch.float32)
    zero = qt.zero.reshape(-1)[0] if qt.zero.numel() == 1 else qt.zero[row, group]
    return (values - zero.float()) * qt.scale[row, group].float()


def group_weights(W: torch.Tensor, qt: QuantizedTensor, row: int, group: int = 0) -> torch.Tensor:
    """The weights of that group as the codes saw them (float32, 1-D): the original ones, or for a rotated tensor
    the rotated ones, in the basis its levels live in."""
    W2 = as_matrix(W).float()  # (out, in)
    if qt.rotation is not None:
        W2 = qt.rotation.apply(W2.contiguous())  # (out, in) in the incoherent basis
    g = effective_group(W2.shape[1], qt.group_size)
    return W2[row, group * g : (group + 1) * g].float()


def level_usage(qt: QuantizedTensor, row: int, group: int = 0) -> torch.Tensor:
    """How many weights of that group landed on each code (2**bits,), by code value."""
    g = effective_group(qt.q.shape[1], qt.group_size)
    codes = qt.q[row, group * g : (group + 1) * g].long()
    return torch.bincount(codes, minlength=2**qt.bits)
