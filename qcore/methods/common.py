"""What every method shares: input checks, option checks, the float16-or-float32 scale rule and rounding.

A method starts with `prepare_weights` (a finite, non-empty (out, in) float32 view), validates its config with
`check_bits` / `check_group_size`, keeps its scales in float16 where they fit (`with_scale_dtype`,
`check_scales`), and rounds with `round_` where torch.round would be slow.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import QcoreError
from .rotation import Rotation, make_rotation

FP16_MAX = 65504.0
FP16_MIN_NORMAL = 2.0**-14
# x + M - M rounds float32 x to the nearest integer, ties to even, exactly as torch.round does for |x| < 2**22
# (larger values clamp to the same code either way). torch.round runs on threads at any size, and on a busy
# machine a threaded op on a small block waits for time slices (10-100x slower measured here).
ROUND_MAGIC = 1.5 * 2**23
ROTATION_SEED = 0  # seeds every rotation's signs (they are stored with the codes, so any seed would do)


def round_(x: torch.Tensor) -> torch.Tensor:
    """Round float32 x to the nearest integer in place (ties to even; exact for |x| < 2**22). Returns x."""
    return x.add_(ROUND_MAGIC).sub_(ROUND_MAGIC)


def check_bits(bits: int, allowed: tuple[int, ...], what: str = "bits") -> None:
    """A config's code width must be one of `allowed`; the message names the choices."""
    if bits not in allowed:
        raise QcoreError(f"{what} must be one of {', '.join(map(str, allowed))}; got {bits}")


def check_group_size(group_size: int) -> None:
    """0 (per-channel) or a positive number of input columns per scale."""
    if not isinstance(group_size, int) or isinstance(group_size, bool) or group_size < 0:
        raise QcoreError(f"group_size must be 0 (per-channel) or a positive integer; got {group_size}")


def as_matrix(W: torch.Tensor) -> torch.Tensor:
    """View a tensor of two or more dims as (out, in): a conv kernel (out, c, kh, kw) -> (out, c*kh*kw)."""
    if W.dim() < 2:
        raise QcoreError(f"only tensors with two or more dimensions are quantized, got shape {tuple(W.shape)}")
    return W.flatten(1)  # (out, in)


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


def check_scales(scale: torch.Tensor, scale_dtype: torch.dtype, allow_zero: bool = False) -> None:
    """Raise OverflowError when a scale bound for float16 leaves float16's normal range, and QcoreError when a
    float32 scale is not finite (the weights overflow float32). Check scales before rounding them to float16:
    a tiny scale rounds to 0. `allow_zero` admits exact zeros, the mark of an all-zero group in a method whose
    grid has no zero level (SEQ)."""
    mag = scale.abs()
    if scale_dtype == torch.float16:
        floor = torch.where(mag > 0, mag, torch.full_like(mag, FP16_MIN_NORMAL)) if allow_zero else mag
        if not bool((mag.max() <= FP16_MAX) & (floor.min() >= FP16_MIN_NORMAL)):
            raise OverflowError
    if not bool(torch.isfinite(scale).all()):
        raise QcoreError("the weights' range overflows float32 (values near 3.4e38); rescale the tensor first")


def with_scale_dtype(quantize_rows: Callable[[torch.dtype], tuple]) -> tuple:
    """The result of `quantize_rows(scale_dtype)`, whose second item is the scale: computed with float16 scales
    (returned as float16), or, when one leaves float16's normal range (the quantizer raises OverflowError), redone
    with float32 scales for the whole tensor."""
    try:
        out = quantize_rows(torch.float16)
        return (out[0], out[1].half(), *out[2:])
    except OverflowError:
        return quantize_rows(torch.float32)


def store_scales(scale: torch.Tensor, allow_zero: bool = False) -> torch.Tensor:
    """Scales as stored: float16 when every one fits float16's normal range, else float32 (for methods whose
    codes do not depend on the scale's rounding during a search; the others use with_scale_dtype)."""
    try:
        check_scales(scale, torch.float16, allow_zero)
        return scale.half()
    except OverflowError:
        check_scales(scale, torch.float32)
        return scale.float()


def rotated(W: torch.Tensor, rotate: bool) -> tuple[torch.Tensor, Rotation | None]:
    """(W_rot, rotation) for a method's `rotate` option: W (out, in) in the incoherent basis, or W itself and None."""
    if not rotate:
        return W, None
    rotation = make_rotation(W.shape[0], W.shape[1], ROTATION_SEED)
    return rotation.apply(W.contiguous()), rotation


def rotated_hessian(H: torch.Tensor, rotation: Rotation | None, n: int) -> torch.Tensor:
    """The layer Hessian in the rotated basis: X' = X Q_n^T, so H' = Q_n H Q_n^T; H itself without a rotation.
    Checks H is (n, n) and finite first."""
    if H.shape != (n, n):
        raise QcoreError(f"H must be ({n}, {n}) for a layer with {n} inputs; got shape {tuple(H.shape)}")
    check_finite(H, "H")
    H = H.float()
    return H if rotation is None else Rotation(rotation.signs_v, rotation.signs_v).apply(H.contiguous())
