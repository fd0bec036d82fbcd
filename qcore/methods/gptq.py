"""GPTQ: quantize one column at a time and fold each column's error into the columns not yet quantized.

Frantar, Ashkboos, Hoefler, Alistarh, "GPTQ: Accurate Post-Training Quantization for Generative
Pre-trained Transformers", ICLR 2023 (arXiv:2210.17323), Algorithm 1. It minimises the layer
objective ||W X^T - W_hat X^T||^2 through the Hessian proxy H = 2 X^T X / n, using the upper
Cholesky factor U of H^-1 (H^-1 = U^T U): after column i is quantized,
    err = (w_i - w_hat_i) / U[i, i];   W[:, i+1:] -= err (x) U[i, i+1:]
Updates are batched lazily over blocks of columns (the paper's Step 2), which changes the speed and,
up to float rounding, not the result. Codes follow the package's affine convention W_hat = (q - zero) * scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..errors import QcoreError
from ..progress import Progress
from .common import (
    check_bits,
    check_group_size,
    check_scales,
    prepare_weights,
    rotated,
    rotated_hessian,
    round_,
    with_scale_dtype,
)
from .quant import CODE_BITS, QuantizedTensor, choose_qparams, num_groups, to_groups

DAMP_RETRIES = 4  # Cholesky attempts: damp, 10x, 100x, 1000x before giving up
INV_LEAF = 256  # inverse_upper solves blocks this small directly


@dataclass(frozen=True)
class GPTQConfig:
    """GPTQ's options. damp defaults to 0.1 (10% of H's mean diagonal), not the paper's 0.01: the lab calibrates
    on small splits (digits-large: 1,297 rows for 1,024-wide layers), where 1% fits the calibration rows more
    closely but generalises worse (held-out top-1 0.972 against 0.974 at 10%, 3-bit g128). One default, here, for
    the library, the CLI and the dashboard."""

    bits: int = field(default=4, metadata={"choices": CODE_BITS})
    group_size: int = 128
    sym: bool = False
    act_order: bool = True
    damp: float = 0.1
    block_size: int = 128
    rotate: bool = False

    def __post_init__(self):
        check_bits(self.bits, CODE_BITS)
        check_group_size(self.group_size)
        if not isinstance(self.damp, int | float) or not math.isfinite(self.damp) or self.damp <= 0:
            raise QcoreError(f"damp must be a positive number (a fraction of H's mean diagonal); got {self.damp}")
        if not isinstance(self.block_size, int) or self.block_size < 1:
            raise QcoreError(f"block_size must be a positive integer; got {self.block_size}")


def prepare_hessian(H: torch.Tensor | None, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Check H is a finite (n, n) matrix; return a float32 copy with dead columns' diagonal set to 1, and the dead mask."""
    if H is None:
        raise QcoreError("gptq needs calibration data: pass H, the (in, in) Hessian 2 X^T X / n of the layer's inputs")
    if H.shape != (n, n):
        raise QcoreError(f"H must be ({n}, {n}) for a layer with {n} inputs; got shape {tuple(H.shape)}")
    H = H.detach().to(torch.float32, copy=True)  # (in, in)
    if not bool(torch.isfinite(H.sum())) and not bool(torch.isfinite(H).all()):  # a cheap sum first
        raise QcoreError("H has NaN or Inf values; the calibration inputs of this layer are not finite")
    dead = torch.diagonal(H) == 0  # (in,) inputs that are always 0
    H[dead, dead] = 1.0
    return H, dead


def inverse_upper(R: torch.Tensor) -> torch.Tensor:
    """Inverse of an upper-triangular (n, n) matrix by recursive 2 x 2 blocking, so the work is in matmuls."""
    n = R.shape[0]
    if n <= INV_LEAF:
        return torch.linalg.solve_triangular(R, torch.eye(n, dtype=R.dtype), upper=True)
    h = n // 2
    A_inv, C_inv = inverse_upper(R[:h, :h]), inverse_upper(R[h:, h:])  # (h, h), (n - h, n - h)
    R_inv = torch.zeros_like(R)  # (n, n)
    R_inv[:h, :h], R_inv[h:, h:] = A_inv, C_inv
    R_inv[:h, h:] = -(A_inv @ R[:h, h:]) @ C_inv  # [[A, B], [0, C]]^-1 = [[A^-1, -A^-1 B C^-1], [0, C^-1]]
    return R_inv


def inverse_cholesky(H: torch.Tensor, damp: float) -> torch.Tensor:
    """Upper Cholesky factor U of (H + lambda I)^-1, lambda = damp * mean(diag H): (in, in), H's dtype.

    No explicit inverse: with J the order-reversing permutation, J H J = L L^T gives H = R R^T for the
    upper R = J L J, so H^-1 = U^T U with U = R^-1, upper with a positive diagonal: exactly the Cholesky
    factor the paper uses. A singular or badly conditioned H raises the dampening tenfold, up to
    DAMP_RETRIES attempts.
    """
    mean_diag = float(torch.diagonal(H).mean())
    for attempt in range(DAMP_RETRIES):
        Hd = H.flip(0, 1)  # (in, in) J H J, a copy
        torch.diagonal(Hd).add_(damp * 10**attempt * mean_diag)
        L, info = torch.linalg.cholesky_ex(Hd)
        if int(info) == 0 and bool(torch.isfinite(L).all()):
            U = inverse_upper(L.flip(0, 1))  # (in, in)
            if bool(torch.isfinite(U).all()):
                return U
    raise QcoreError(
        f"H is not positive definite even with dampening {damp * 10 ** (DAMP_RETRIES - 1):g} x its mean diagonal; "
        "the calibration inputs are degenerate (try a larger damp or more calibration data)"
    )


# GPTQ, Algorithm 1 of Frantar et al. 2022 (lazy batch updates, Cholesky reformulation), on the transposed
# weights: row c of Wt is column c of W, so the per-column work reads and writes contiguous memory.
# Inside a block each column gathers the errors of the block's earlier columns in one matrix-vector
# product just before it is quantized; after the block, all later columns get its errors in one matmul.
# Same sums as the paper's rank-1 updates, in another order. (Rank-1 or sub-block updates were slower
# here: their ops are big enough for torch to run them on threads, and on a busy machine every
# threaded op waits for a time slice.)
def gptq_loop(
    Wt: torch.Tensor,
    U: torch.Tensor,
    bits: int,
    sym: bool,
    group_size: int,
    block_size: int,
    static: tuple[torch.Tensor, torch.Tensor, list[int]] | None,
    scale_dtype,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Quantize Wt (in, out) float32 IN PLACE, in row order. U: (in, in) float32 upper factor of H^-1.

    static: (scale (G, out), zero (G, out), group of each row) fixed up-front; None chooses each group's
    scale and zero when the loop reaches its first row, from the error-updated weights.
    Returns codes Qt (in, out) uint8, scale (G, out), zero (G, out), both float32.
    Raises OverflowError when a float16 scale is out of float16's normal range.
    """
    n, out = Wt.shape
    maxq = 2**bits - 1
    g = n if static is not None or num_groups(n, group_size) == 1 else group_size
    Qt = torch.empty(n, out, dtype=torch.uint8)  # (in, out)
    if static is None:
        scale, zero = torch.empty(-(-n // g), out), torch.empty(-(-n // g), out)  # (G, out)
    else:
        scale, zero, group_of = static
    Err1 = torch.empty(min(block_size, n), out)  # (B, out) scaled errors of the current block
    w_hat = torch.empty(out)
    for i1 in range(0, n, block_size):
        i2 = min(i1 + block_size, n)
        W1, U1, E1 = Wt[i1:i2], U[i1:i2, i1:i2], Err1[: i2 - i1]  # (b, out), (b, b), (b, out)
        for i in range(i2 - i1):
            c = i1 + i
            if static is not None:
                s, z = scale[group_of[c]], zero[group_of[c]]  # (out,), (out,)
            elif c % g == 0:
                slab = torch.addmm(Wt[c : c + g], U[i1:c, c : c + g].T, E1[:i], alpha=-1)  # (<= g, out) up to date
                s, z = choose_qparams(slab.T, bits, sym, 1.0, scale_dtype)  # (out,), (out,)
                check_scales(s, scale_dtype)
                scale[c // g], zero[c // g] = s, z
            w, err = W1[i], E1[i]  # (out,), (out,)
            if i:
                w.addmv_(E1[:i].T, U1[:i, i], alpha=-1)  # the errors of this block's earlier columns
            round_(torch.div(w, s, out=w_hat)).add_(z).clamp_(0, maxq)
            Qt[c] = w_hat
            w_hat.sub_(z).mul_(s)
            torch.sub(w, w_hat, out=err).div_(U1[i, i])
        Wt[i2:].addmm_(U[i1:i2, i2:].T, E1, alpha=-1)  # all later columns, lazily
    return Qt, scale, zero


def static_qparams(W: torch.Tensor, cfg: GPTQConfig, scale_dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero of every group of the original W (out, in), chosen before the loop. Returns (G, out) each."""
    scale, zero = choose_qparams(to_groups(W, cfg.group_size), cfg.bits, cfg.sym, 1.0, scale_dtype)  # (out, G)
    check_scales(scale, scale_dtype)
    return scale.T.contiguous(), zero.T.contiguous()  # (G, out)


def _run(W: torch.Tensor, U: torch.Tensor, perm: torch.Tensor | None, cfg: GPTQConfig, scale_dtype):
    """One GPTQ pass with the given scale dtype. Returns q (out, in) uint8, scale (out, G), zero (out, G)."""
    out, n = W.shape
    static = None
    grouped = num_groups(n, cfg.group_size) > 1
    if perm is not None or not grouped:  # static groups: per-channel, or act_order with groups
        scale, zero = static_qparams(W, cfg, scale_dtype)  # (G, out)
        g = n if not grouped else cfg.group_size
        order = perm if perm is not None else torch.arange(n)
        static = (scale, zero, (order // g).tolist())
    Wt = (W[:, perm] if perm is not None else W).T.contiguous()  # (in, out), permuted
    Qt, scale, zero = gptq_loop(Wt, U, cfg.bits, cfg.sym, cfg.group_size, cfg.block_size, static, scale_dtype)
    if perm is not None:
        Qt = Qt[torch.argsort(perm)]  # (in, out), back in the original column order
    return Qt.T.contiguous(), scale.T.contiguous(), zero.T.contiguous()  # (out, in), (out, G), (out, G)


def quantize_gptq(
    W: torch.Tensor, cfg: GPTQConfig, *, H: torch.Tensor | None = None, progress: Progress | None = None
) -> QuantizedTensor:
    """GPTQ quantization of a weight tensor (two or more dims, viewed as (out, in)) given H (in, in).

    H: the layer's Hessian proxy 2 X^T X / n, float32 or float64. An input that is always 0 (H[i, i] == 0)
    is a dead column: its weights cannot matter, so they are set to 0. Everything runs in float32, the
    Hessian factorization too: the dampening bounds H's condition number (by in / damp), and on
    inputs conditioned up to 1e5 a float64 factorization gave the same layer objective to 4 digits,
    at twice the time.

    Groups. Without act_order, a group's scale and zero are chosen by min-max (asym) or signed absmax (sym) on the
    group's error-updated weights when the loop reaches its first column, as in the paper. With act_order
    and groups, columns are visited out of order, so the groups are "static": each original group's
    scale and zero are chosen up-front from the original W and every column uses its own group's. This
    keeps the stored layout: scale (out, G) is indexed by the original column's group, col // group_size.
    Per-channel scales are always chosen up-front (the paper's setup).

    Returns q (out, in) uint8, scale (out, G) float16 (float32 when a scale leaves float16's normal
    range), zero (out, G) uint8 integer codes, or (1, 1) when symmetric.
    """
    W2 = prepare_weights(W)  # (out, in)
    out, n = W2.shape
    H32, dead = prepare_hessian(H, n)  # (in, in), (in,)
    W2 = W2.clone()
    W2[:, dead] = 0.0
    W2, rotation = rotated(W2, cfg.rotate)  # (out, in)
    H32 = rotated_hessian(H32, rotation, n)  # (in, in): X' = X Q_n^T, so H' = Q_n H Q_n^T
    perm = None
    if cfg.act_order:
        perm = torch.argsort(torch.diagonal(H32), descending=True, stable=True)  # (in,)
        H32 = H32[perm[:, None], perm]  # (in, in)
    U = inverse_cholesky(H32, cfg.damp)  # (in, in)
    q, scale, zero = with_scale_dtype(lambda dtype: _run(W2, U, perm, cfg, dtype))
    zero = zero[:1, :1].to(torch.uint8) if cfg.sym else zero.to(torch.uint8)
    return QuantizedTensor(q, scale, zero, cfg.bits, cfg.group_size, tuple(W.shape), rotation=rotation)
