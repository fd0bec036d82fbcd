"""trellis: QTIP-style 2-bit trellis-coded quantization over sequences of weights, after the incoherence rotation.

Tseng, Sun, Hou, De Sa, "QTIP", NeurIPS 2024 (arXiv:2406.11235). Each row of the rotated weights is cut into
sequences of T weights, scaled to unit variance (its RMS), and coded by Viterbi on the bitshift trellis of L state
bits with QTIP's computed Gaussian code (trellis_code.py): k = 2 bits per weight plus L - k start bits per sequence.
The row's scale is then refit by least squares. With calibrate and a layer Hessian H the sequences are coded column
block by column block with BlockLDLQ feedback (coded.py). A CodedTensor: k bits per weight, the starts, one float16
scale per row, and the m + n rotation signs.

Sequence length: T is the largest divisor of the row length from 64 to 512 (a row of 384 is one sequence of 384,
a row of 4096 eight of 512), so rows need no padding and calibrated feedback crosses the blocks of long rows; a row
with no such divisor (or shorter than 64) is one sequence if it is at most 512 long, else it is padded to sequences
of 256. The layout is the same with and without calibration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import QcoreError
from ..progress import Progress
from .coded import CodedTensor, calibrated_codes, code_with_scales, pad_columns, start_scales, trellis_coder
from .common import (
    prepare_weights,
    rotated,
    rotated_hessian,
    store_scales,
)
from .e8p import pad_hessian
from .trellis_code import MAX_L, MIN_L

K = 2  # bits per weight
T_MIN, T_MAX, T_PAD = 64, 512, 256
STATE_BITS = tuple(range(6, 13))  # L offered: 6 .. 12 (14 and 16 are exact too, but minutes per layer on a CPU)


@dataclass(frozen=True)
class TrellisConfig:
    L: int = field(default=10, metadata={"choices": STATE_BITS})
    rotate: bool = True
    calibrate: bool = False
    damp: float = 0.1

    def __post_init__(self):
        if self.L not in range(MIN_L, MAX_L + 1) or self.L <= K:
            raise QcoreError(f"trellis state bits L must be from {max(MIN_L, K + 1)} to {MAX_L}; got {self.L}")
        if not 0 < self.damp < float("inf"):
            raise QcoreError(f"damp must be a positive number; got {self.damp}")


def sequence_length(n: int, longest: int = T_MAX) -> int:
    """T for rows of n weights, at most `longest` (module docstring)."""
    for T in range(min(n, longest), T_MIN - 1, -1):
        if n % T == 0:
            return T
    return n if n <= longest else T_PAD


def quantize_trellis(
    W: torch.Tensor, cfg: TrellisConfig, *, H: torch.Tensor | None = None, progress: Progress | None = None
) -> CodedTensor:
    """Trellis quantization of a weight tensor (two or more dims, viewed as (out, in)); with H (in, in), BlockLDLQ.

    Returns codes (out, n_pad) int32 (k-bit symbols), start (out, n_pad / T) int32 (L - k bits each), scale (out, 1)
    float16 (float32 when a scale leaves float16's normal range; 0 for an all-zero row), and the rotation.
    """
    W2, rotation = rotated(prepare_weights(W), cfg.rotate)  # (out, in)
    out, n = W2.shape
    T = sequence_length(n)
    Wp = pad_columns(W2, T)  # (out, n_pad)
    scale = start_scales(Wp.reshape(out, 1, -1), 1.0)  # (out, 1): the code has unit variance
    coder = trellis_coder(cfg.L, K, T, progress)
    if H is None or not cfg.calibrate:  # without calibration (or data for it): code each block on its own
        codes, start, scale = code_with_scales(Wp, 1, coder, scale, T)
    else:
        Hp = pad_hessian(rotated_hessian(H, rotation, n), Wp.shape[1])  # (n_pad, n_pad)
        codes, start, scale = calibrated_codes(Wp, Hp, coder, scale, T, cfg.damp)
    return CodedTensor(
        codes, store_scales(scale, allow_zero=True), "trellis", K, 1, 0, tuple(W.shape), start=start,
        start_bits=cfg.L - K, params=(cfg.L, K, T), rotation=rotation,
    )  # fmt: skip
