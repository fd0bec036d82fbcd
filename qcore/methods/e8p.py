"""e8p: QuIP#-style 2-bit vector quantization, 8 weights per 16-bit E8P code, after the incoherence rotation.

Tseng, Chee, Sun, Kuleshov, De Sa, "QuIP#", ICML 2024 (arXiv:2402.04396). The rotated weights are close to i.i.d.
Gaussian; each row (or group) is scaled by its RMS times E8P's best Gaussian scale, every 8 weights take the nearest
lattice point (e8p_codebook.py), and the scale is then refit by least squares. With calibrate and a layer Hessian H
the blocks are coded in order with BlockLDLQ feedback (coded.py). A CodedTensor: 16 bits per 8 weights plus one
float16 scale per row (or group), the m + n rotation signs, and a row padded to a multiple of 8.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import QcoreError
from ..progress import Progress
from .coded import CodedTensor, calibrated_codes, code_with_scales, e8p_coder, pad_columns, start_scales
from .common import (
    check_group_size,
    prepare_weights,
    rotated,
    rotated_hessian,
    store_scales,
)

GAUSSIAN_SCALE = (
    0.965  # E8P's best scale for unit-variance Gaussian weights (e8p_codebook.gaussian_mse; a test pins it)
)
BLOCK = 8


@dataclass(frozen=True)
class E8PConfig:
    group_size: int = 0
    rotate: bool = True
    calibrate: bool = False
    damp: float = 0.1

    def __post_init__(self):
        check_group_size(self.group_size)
        if self.group_size % BLOCK:
            raise QcoreError(f"e8p group_size must be a multiple of 8 (8 weights per code); got {self.group_size}")
        if not 0 < self.damp < float("inf"):
            raise QcoreError(f"damp must be a positive number; got {self.damp}")


def quantize_e8p(
    W: torch.Tensor, cfg: E8PConfig, *, H: torch.Tensor | None = None, progress: Progress | None = None
) -> CodedTensor:
    """E8P quantization of a weight tensor (two or more dims, viewed as (out, in)); with H (in, in), BlockLDLQ.

    Returns codes (out, n_pad / 8) int32 (16-bit E8P codes), scale (out, G) float16 (float32 when a scale leaves
    float16's normal range; 0 for an all-zero group), and the rotation.
    """
    W2, rotation = rotated(prepare_weights(W), cfg.rotate)  # (out, in)
    out, n = W2.shape
    calibrated = H is not None and cfg.calibrate
    g = cfg.group_size if 0 < cfg.group_size < n else 0
    Wp = pad_columns(W2, g or BLOCK)  # (out, n_pad)
    groups = Wp.shape[1] // g if g else 1
    scale = start_scales(Wp.reshape(out, groups, -1), GAUSSIAN_SCALE)  # (out, G)
    if not calibrated:  # code each block on its own
        codes, _, scale = code_with_scales(Wp, groups, e8p_coder, scale, BLOCK)
    else:
        Hp = pad_hessian(rotated_hessian(H, rotation, n), Wp.shape[1])  # (n_pad, n_pad)
        codes, _, scale = calibrated_codes(Wp, Hp, e8p_coder, scale, BLOCK, cfg.damp)
    return CodedTensor(
        codes, store_scales(scale, allow_zero=True), "e8p", 16, BLOCK, g, tuple(W.shape), rotation=rotation
    )


def pad_hessian(H: torch.Tensor, n_pad: int) -> torch.Tensor:
    """H (n, n) with zero-padded columns added: their inputs are 0, so H grows by an identity block (no coupling)."""
    n = H.shape[0]
    if n == n_pad:
        return H
    Hp = torch.eye(n_pad, dtype=H.dtype)
    Hp[:n, :n] = H
    return Hp
