"""The incoherence transform of QuIP# and QuaRot: W -> W_rot = Q_m W Q_n^T, with Q_m = H_m S_U and Q_n = H_n S_V.

Tseng, Chee, Sun, Kuleshov, De Sa, "QuIP#" (arXiv:2402.04396), Section 3; Ashkboos et al., "QuaRot"
(arXiv:2404.00456). S_U (m x m) and S_V (n x n) are diagonal matrices of random signs, H_m and H_n orthonormal
Hadamard-type matrices, so Q_m and Q_n are orthogonal: the rotation keeps ||W||_F, `undo` inverts it exactly (up
to float32 rounding), and one large row or column is spread over all the entries, which a uniform grid handles
better. A method quantizes W_rot and dequantizes through Q_m^T W_hat_rot Q_n.

Which H_n, for any n >= 1 (`describe(n)` says it in words):
1. Write n = p * 2**k with the largest 2**k for which p is 1 or an order this module builds a Hadamard matrix of,
   from quadratic residues mod a prime q (Paley, 1933):
     Paley I:  p = q + 1,      q prime, q = 3 mod 4  (non powers of two: 12, 20, 24, 44, 48, 60)
     Paley II: p = 2 (q + 1),  q prime, q = 1 mod 4  (28, 36; for 12 and 60 Paley I is used)
   and p <= P_MAX = 64, so the one dense factor stays small. Then H_n = (H_p ⊗ H_{2**k}) / sqrt(n): H_{2**k} is
   Sylvester's matrix, applied by a fast Walsh-Hadamard transform (k passes of butterflies, O(n log n)), and H_p
   the dense p x p ±1 matrix, applied by a matmul on a (..., p, 2**k) view (O(n p)).
2. Fallback, when no such p exists (n = 3, 10, 3000, ...): a block diagonal of normalised Walsh-Hadamard
   transforms over the binary decomposition of n, largest block first (10 = 8 + 2, 3 = 2 + 1; a block of 1 is the
   identity). It is still orthonormal and O(n log n), but it mixes only within each block, so it spreads less.
No dense n x n matrix is ever built or multiplied for n > 64. Everything is float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import torch

from ..errors import QcoreError

P_MAX = 64  # largest order of the dense Paley factor H_p


def _is_prime(q: int) -> bool:
    return q >= 2 and all(q % d for d in range(2, math.isqrt(q) + 1))


def _paley_orders(limit: int) -> dict[int, tuple[str, int]]:
    """{p: (construction, q)} for every Paley order p <= limit; Paley I wins where both apply."""
    primes = [q for q in range(3, limit) if _is_prime(q)]
    orders = {q + 1: ("I", q) for q in primes if q % 4 == 3 and q + 1 <= limit}
    for q in primes:
        if q % 4 == 1 and 2 * (q + 1) <= limit:
            orders.setdefault(2 * (q + 1), ("II", q))
    return orders


PALEY_ORDERS = _paley_orders(P_MAX)  # {p: ("I" or "II", q)}


def _jacobsthal(q: int) -> torch.Tensor:
    """(q, q) int64 Jacobsthal matrix Q[i, j] = chi(j - i), chi the Legendre symbol mod q (chi(0) = 0)."""
    chi = -torch.ones(q, dtype=torch.int64)
    chi[[(i * i) % q for i in range(1, q)]] = 1
    chi[0] = 0
    idx = torch.arange(q)
    return chi[(idx[None, :] - idx[:, None]) % q]  # (q, q)


def _paley_core(q: int, column_sign: int) -> torch.Tensor:
    """(q + 1, q + 1) int64 matrix [[0, 1^T], [column_sign * 1, Q]]: zero diagonal, ±1 elsewhere."""
    S = torch.zeros(q + 1, q + 1, dtype=torch.int64)
    S[0, 1:] = 1
    S[1:, 0] = column_sign
    S[1:, 1:] = _jacobsthal(q)
    return S


@cache
def _paley(p: int) -> torch.Tensor:
    """The cached (p, p) float32 ±1 Paley matrix; callers must not write to it."""
    kind, q = PALEY_ORDERS[p]
    if kind == "I":  # S is skew-symmetric with S S^T = q I, so (I + S)(I + S)^T = (q + 1) I
        H = torch.eye(p, dtype=torch.int64) + _paley_core(q, -1)
    else:  # S is symmetric with S^2 = q I; 0 -> [[1, -1], [-1, -1]], ±1 -> ±[[1, 1], [1, -1]]
        A = torch.tensor([[1, 1], [1, -1]])
        B = torch.tensor([[1, -1], [-1, -1]])
        H = torch.kron(_paley_core(q, 1), A) + torch.kron(torch.eye(q + 1, dtype=torch.int64), B)
    return H.float()  # (p, p)


def paley_matrix(p: int) -> torch.Tensor:
    """The (p, p) float32 ±1 matrix H_p with H_p H_p^T = p I that this module uses, for p in PALEY_ORDERS."""
    if p not in PALEY_ORDERS:
        raise QcoreError(f"no Paley matrix of order {p} here; the orders built are {sorted(PALEY_ORDERS)}")
    return _paley(p).clone()


@dataclass(frozen=True)
class _Plan:
    """How H_n is applied: (H_p ⊗ H_s) / sqrt(n) with n = p * s, or, when `blocks` is not empty, the fallback."""

    p: int  # order of the dense Paley factor (1: none)
    s: int  # order of the Sylvester factor, a power of two
    blocks: tuple[int, ...]  # the fallback's Sylvester blocks, largest first


@cache
def _plan(n: int) -> _Plan:
    """The factorisation n = p * 2**k with the largest 2**k that works, else the binary blocks of n."""
    for k in range((n & -n).bit_length() - 1, -1, -1):
        p = n >> k
        if p == 1 or p in PALEY_ORDERS:
            return _Plan(p, 1 << k, ())
    return _Plan(1, 1, tuple(1 << b for b in range(n.bit_length() - 1, -1, -1) if n >> b & 1))


def describe(n: int) -> str:
    """H_n's structure in words: "12 x 32: Paley I (q=11) ⊗ Sylvester 32", "Sylvester 64", "binary blocks 8 + 2"."""
    _check_size(n, "n")
    plan = _plan(n)
    if plan.blocks:
        return "binary blocks " + " + ".join(map(str, plan.blocks))
    if plan.p == 1:
        return f"Sylvester {n}"
    kind, q = PALEY_ORDERS[plan.p]
    return f"{plan.p} x {plan.s}: Paley {kind} (q={q}) ⊗ Sylvester {plan.s}"


def _fwht(x: torch.Tensor) -> torch.Tensor:
    """Unnormalised Sylvester transform along dim 1 of a contiguous (B, N, T) tensor, N a power of two; a new tensor."""
    B, N, T = x.shape
    bufs = (torch.empty_like(x), torch.empty_like(x) if N > 2 else None)
    src, h, i = x, 1, 0
    while h < N:
        a = src.view(B, N // (2 * h), 2, h * T)  # (B, pairs, 2, h*T): the two halves of each butterfly
        d = bufs[i % 2].view(B, N // (2 * h), 2, h * T)
        torch.add(a[:, :, 0], a[:, :, 1], out=d[:, :, 0])
        torch.sub(a[:, :, 0], a[:, :, 1], out=d[:, :, 1])
        src, h, i = bufs[i % 2], 2 * h, i + 1
    return src if N > 1 else x.clone()


def _blocks(x: torch.Tensor, blocks: tuple[int, ...]) -> torch.Tensor:
    """The fallback: normalised Sylvester transforms on consecutive blocks along dim 1 of (B, n, T); self-inverse."""
    out = torch.empty_like(x)
    start = 0
    for b in blocks:
        out[:, start : start + b] = _fwht(x[:, start : start + b].contiguous()).mul_(1 / math.sqrt(b))
        start += b
    return out


def _transform(x: torch.Tensor, inverse: bool) -> torch.Tensor:
    """H_n (or H_n^T) along dim 1 of a contiguous (B, n, T) float32 tensor; a new tensor."""
    B, n, T = x.shape
    plan = _plan(n)
    if plan.blocks:
        return _blocks(x, plan.blocks)
    y = _fwht(x.view(B * plan.p, plan.s, T))  # (B*p, s, T): H_s on the (p, s) view (Sylvester's is symmetric)
    if plan.p == 1:
        return y.view(B, n, T).mul_(1 / math.sqrt(n))
    H_p = (_paley(plan.p).T if inverse else _paley(plan.p)) * (1 / math.sqrt(n))  # (p, p), the scale folded in
    return torch.matmul(H_p, y.view(B, plan.p, plan.s * T)).view(B, n, T)  # (B, p, s*T) -> (B, n, T)


def _check_size(n: int, name: str) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise QcoreError(f"{name} must be a positive integer; got {n!r}")


def _check_float32(x: torch.Tensor, name: str) -> None:
    if x.dtype != torch.float32:
        raise QcoreError(f"{name} must be float32, got {x.dtype}; convert it with .float() first")


def hadamard(x: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    """H_n x along the last dim: x (..., n) float32, n >= 1 -> (..., n) float32, a new tensor (x is not changed).

    H_n is orthonormal (module docstring for its structure); inverse=True applies H_n^T = H_n^-1.
    """
    _check_float32(x, "x")
    if x.dim() == 0 or x.shape[-1] == 0:
        raise QcoreError(f"hadamard needs a last dim of size >= 1, got shape {tuple(x.shape)}")
    n = x.shape[-1]
    y = _transform(x.reshape(-1, n, 1).contiguous(), inverse)  # (B, n, 1)
    return y.view(x.shape)


def _sign(flips: torch.Tensor) -> torch.Tensor:
    """(k,) bool (True: -1) -> (k,) float32 ±1."""
    return 1 - 2 * flips.float()


@dataclass(frozen=True, eq=False)
class Rotation:
    """The random signs of one rotation; H_m and H_n follow from the shape (module docstring).

    signs_u: (m,) bool, the diagonal of S_U (True means -1); signs_v: (n,) bool, the diagonal of S_V.
    """

    signs_u: torch.Tensor
    signs_v: torch.Tensor

    def __post_init__(self) -> None:
        for name, s in (("signs_u", self.signs_u), ("signs_v", self.signs_v)):
            if s.dtype != torch.bool or s.dim() != 1 or s.numel() == 0:
                raise QcoreError(f"{name} must be a non-empty 1-D bool tensor, got {s.dtype} {tuple(s.shape)}")

    @property
    def m(self) -> int:
        return self.signs_u.numel()

    @property
    def n(self) -> int:
        return self.signs_v.numel()

    def _check(self, W: torch.Tensor, name: str) -> None:
        _check_float32(W, name)
        if tuple(W.shape) != (self.m, self.n):
            raise QcoreError(f"{name} must have shape {(self.m, self.n)} for this rotation, got {tuple(W.shape)}")

    def apply(self, W: torch.Tensor) -> torch.Tensor:
        """W (m, n) float32 -> W_rot = H_m S_U W S_V H_n^T, (m, n) float32; W is not changed."""
        self._check(W, "W")
        m, n = W.shape
        W_s = W * (_sign(self.signs_u)[:, None] * _sign(self.signs_v))  # (m, n) = S_U W S_V, a new tensor
        W_s = _transform(W_s.view(m, n, 1), inverse=False)  # (m, n, 1): each row w -> H_n w
        return _transform(W_s.view(1, m, n), inverse=False).view(m, n)  # H_m on the columns

    def undo(self, W_rot: torch.Tensor) -> torch.Tensor:
        """W_rot (m, n) float32 -> S_U H_m^T W_rot H_n S_V = W, (m, n) float32; W_rot is not changed."""
        self._check(W_rot, "W_rot")
        m, n = W_rot.shape
        W = _transform(W_rot.reshape(1, m, n).contiguous(), inverse=True)  # (1, m, n): H_m^T on the columns
        W = _transform(W.view(m, n, 1), inverse=True).view(m, n)  # each row r -> H_n^T r
        return W.mul_(_sign(self.signs_u)[:, None] * _sign(self.signs_v))


def make_rotation(m: int, n: int, seed: int) -> Rotation:
    """A rotation for (m, n) weights. With g = torch.Generator().manual_seed(seed), signs_u is
    torch.randint(0, 2, (m,), generator=g) == 1 and then, from the same g, signs_v is
    torch.randint(0, 2, (n,), generator=g) == 1: the same seed gives the same signs."""
    _check_size(m, "m")
    _check_size(n, "n")
    g = torch.Generator().manual_seed(seed)
    signs_u = torch.randint(0, 2, (m,), generator=g) == 1
    signs_v = torch.randint(0, 2, (n,), generator=g) == 1
    return Rotation(signs_u, signs_v)
