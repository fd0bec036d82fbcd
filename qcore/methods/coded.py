"""Vector and trellis codes: a quantized tensor whose codes each cover a block of weights, and the two ways e8p and
trellis fill one: plain coding with least-squares scales, and BlockLDLQ, GPTQ's error feedback over blocks.

Departs from the affine convention: a row, padded with zeros to whole blocks, is decoded by a scheme and then
scaled, W_hat_rot[r, j] = decode(codes)[r, j] * scale[r, group(j)], and the rotation (which these methods apply
by default) is undone last. Schemes:

    "e8p"      8 weights per 16-bit code: a point of QuIP#'s E8P lattice code book (e8p_codebook.py)
    "trellis"  1 weight per k-bit symbol: QTIP's bitshift trellis over sequences of T weights, with L - k start
               bits per sequence (trellis_code.py)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from ..progress import Progress
from .common import store_scales
from .e8p_codebook import e8p_decode, e8p_nearest
from .gptq import inverse_cholesky, prepare_hessian
from .quant import Quantized
from .rotation import Rotation
from .trellis_code import decode as trellis_decode
from .trellis_code import viterbi

# A block coder: x (R, B) in code units -> (codes (R, B // dim) int32, start (R,) int32 or None, x_hat (R, B)).
Coder = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]]
SCHEMES = ("e8p", "trellis")


@dataclass(frozen=True, eq=False)
class CodedTensor(Quantized):
    """Codes of a scheme plus what it takes to decode them.

    codes:    (out, C) int32, code_bits each: e8p one code per 8 weights (C = n_pad / 8), trellis one symbol per
              weight (C = n_pad); n_pad is the row length padded to whole blocks
    scale:    (out, G) float16 or float32, one per group of group_size weights (G = 1: one per row); 0 marks an
              all-zero group (these codes have no zero point)
    start:    (out, S) int32 trellis start states, start_bits each, one per sequence of T weights; None for e8p
    params:   the trellis's (L, k, T); () for e8p
    rotation: the incoherence transform the codes were taken in, or None
    """

    codes: torch.Tensor
    scale: torch.Tensor
    scheme: str
    code_bits: int
    dim: int  # weights per code
    group_size: int
    shape: tuple[int, ...]
    method: str = ""
    config: dict = field(default_factory=dict)
    start: torch.Tensor | None = None
    start_bits: int = 0
    params: tuple = ()
    rotation: Rotation | None = None

    @property
    def row_local(self) -> bool:
        return self.rotation is None

    @property
    def encoding(self) -> str:
        """The scheme with its parameters, as the artifact names it: "e8p" or "trellis L=10 k=2 T=256"."""
        return self.scheme if self.scheme == "e8p" else "trellis L={} k={} T={}".format(*self.params)

    @property
    def in_features(self) -> int:
        return int(torch.Size(self.shape[1:]).numel())

    @property
    def numel(self) -> int:
        return self.shape[0] * self.in_features

    @property
    def bits(self) -> float:
        """Code bits per weight: 2 for e8p, k for the trellis."""
        return self.code_bits / self.dim

    def payload_bits(self) -> int:
        return self.code_bits * self.codes.numel()

    def decode(self) -> torch.Tensor:
        """The unscaled reconstruction, (out, n_pad) float32."""
        out = self.codes.shape[0]
        if self.scheme == "e8p":
            return e8p_decode(self.codes).reshape(out, -1)  # (out, C * 8)
        L, k, T = self.params
        symbols = self.codes.reshape(-1, T).to(torch.uint8)  # (out * S, T)
        return trellis_decode(symbols, self.start.reshape(-1), L, k).reshape(out, -1)  # (out, n_pad)

    def dequantize(self) -> torch.Tensor:
        out, n = self.shape[0], self.in_features
        values = self.decode()  # (out, n_pad)
        G = self.scale.shape[1]
        W_hat = (values.reshape(out, G, -1) * self.scale.float().unsqueeze(-1)).reshape(out, -1)[:, :n]
        if self.rotation is not None:
            W_hat = self.rotation.undo(W_hat.contiguous())  # (out, n)
        return W_hat.reshape(self.shape)

    def rows(self, r0: int, r1: int) -> CodedTensor:
        if self.rotation is not None:
            raise ValueError("a rotated tensor mixes all rows: dequantize it whole")
        codes = self.codes[r0:r1]
        start = None if self.start is None else self.start[r0:r1]
        shape = (codes.shape[0], *self.shape[1:])
        return replace(self, codes=codes, scale=self.scale[r0:r1], start=start, shape=shape)


def e8p_coder(x: torch.Tensor) -> tuple[torch.Tensor, None, torch.Tensor]:
    """E8P on rows of x (R, B), B a multiple of 8: the nearest lattice point of every 8 weights."""
    R, B = x.shape
    codes = e8p_nearest(x.reshape(-1, 8)).reshape(R, B // 8)  # (R, B / 8)
    return codes, None, e8p_decode(codes).reshape(R, B)


def trellis_coder(L: int, k: int, T: int, progress: Progress | None = None) -> Coder:
    """The bitshift trellis on rows of x (R, B), B a multiple of T: Viterbi over each sequence of T weights."""

    def code(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        R, B = x.shape
        symbols, start = viterbi(x.reshape(-1, T), L, k, progress)  # (R * B / T, T), (R * B / T,)
        x_hat = trellis_decode(symbols, start, L, k)  # (R * B / T, T)
        return symbols.reshape(R, B).int(), start.reshape(R, B // T).int(), x_hat.reshape(R, B)

    return code


def pad_columns(W: torch.Tensor, multiple: int) -> torch.Tensor:
    """(out, n) -> (out, n_pad) with zero columns up to a multiple of `multiple`."""
    pad = -W.shape[1] % multiple
    return torch.nn.functional.pad(W, (0, pad)) if pad else W


def start_scales(Wg: torch.Tensor, gaussian_scale: float) -> torch.Tensor:
    """Each group's scale before coding: its RMS times the code's best scale for unit-variance Gaussian weights (the
    rotated weights are close to Gaussian). Wg (out, G, g) -> (out, G); 0 for an all-zero group."""
    return (Wg.double().square().mean(-1).sqrt() * gaussian_scale).float()  # float64: 1e30 weights square to 1e60


def code_with_scales(W: torch.Tensor, groups: int, coder: Coder, scale: torch.Tensor, block: int):
    """Code W (out, n_pad) in code units W / scale, blocks of `block` weights, then refit each group's scale by least
    squares on its reconstruction (the codes stay). Returns codes, start, scale (out, G) float32."""
    out, n = W.shape
    Wg = W.reshape(out, groups, -1)  # (out, G, g)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale)).unsqueeze(-1)  # (out, G, 1)
    x = (Wg / safe).reshape(-1, block)  # (out * n / block, block)
    codes, start, x_hat = coder(x)
    x_hat = x_hat.reshape(out, groups, -1)  # (out, G, g)
    num, den = (Wg * x_hat).sum(-1), x_hat.square().sum(-1)  # (out, G)
    fitted = torch.where((den > 0) & (scale > 0), num / den.clamp(min=1e-30), scale)
    codes = codes.reshape(out, -1)
    return codes, None if start is None else start.reshape(out, -1), fitted


def refit_scales(W: torch.Tensor, x_hat: torch.Tensor, H: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Scales that minimise the layer error ||(W - W_hat) X^T||^2 for fixed codes (H = 2 X^T X / n), one per group.

    W_hat[r, j] = s[r, group(j)] x_hat[r, j], so each row's G scales solve the G x G normal equations
    A s = b with A[g, h] = x_g H_gh x_h and b[g] = x_g (W H)_g (for one scale per row, s = <W H, x_hat> /
    <x_hat H, x_hat>). W, x_hat (out, n_pad); H (n_pad, n_pad); scale (out, G). A group whose reconstruction is 0,
    or whose scale is 0, keeps its old scale; rows are solved in chunks (A's build needs out x n x G floats)."""
    out, n = W.shape
    G = scale.shape[1]
    g = n // G
    Hb = H.reshape(n, G, g)  # (n, G, g): H's columns by group
    fitted = scale.clone()
    chunk = max(1, (1 << 24) // max(n * G, 1))
    for r0 in range(0, out, chunk):
        x = x_hat[r0 : r0 + chunk]  # (R, n)
        xg = x.reshape(-1, G, g)  # (R, G, g)
        P = torch.einsum("ihj,rhj->rih", Hb, xg)  # (R, n, G): (H x_h) for every group h
        A = torch.einsum("rgi,rgih->rgh", xg, P.reshape(-1, G, g, G))  # (R, G, G)
        b = ((W[r0 : r0 + chunk] @ H) * x).reshape(-1, G, g).sum(-1)  # (R, G)
        old = scale[r0 : r0 + chunk]
        live = (A.diagonal(dim1=1, dim2=2) > 0) & (old > 0)  # (R, G)
        # a dead group adds nothing to W_hat (x_g = 0, or its scale is 0): an identity row and column pin it
        keep = live.unsqueeze(1) & live.unsqueeze(2)
        A = torch.where(keep, A, torch.eye(G, dtype=A.dtype).expand_as(A))
        b = torch.where(live, b, old)
        ridge = 1e-9 * A.diagonal(dim1=1, dim2=2).abs().amax(-1, keepdim=True).clamp(min=1e-30)  # (R, 1)
        s, info = torch.linalg.solve_ex(A.double() + torch.diag_embed(ridge.double().expand(-1, G)), b.double())
        ok = (info == 0).unsqueeze(1) & torch.isfinite(s)
        fitted[r0 : r0 + chunk] = torch.where(ok & live, s.float(), old)
    return fitted


LDLQ_PASSES = 8  # at most this many BlockLDLQ runs, each with the scales refit after the one before
LDLQ_TOLERANCE = 0.005  # stop once a pass lowers the layer error by less than this fraction


def layer_errors(W: torch.Tensor, x_hat: torch.Tensor, scale: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """Each row's share of the layer error ||(W - W_hat) X^T||^2 = sum_r d_r H d_r^T, d = W - W_hat. W, x_hat
    (out, n_pad); scale (out, G); H (n_pad, n_pad). Returns (out,) float64."""
    out, n = W.shape
    G = scale.shape[1]
    D = W - (x_hat.reshape(out, G, -1) * scale.unsqueeze(-1)).reshape(out, n)  # (out, n)
    D = D.double()
    return ((D @ H.double()) * D).sum(1)


def calibrated_codes(W: torch.Tensor, H: torch.Tensor, coder: Coder, scale: torch.Tensor, block: int, damp: float):
    """BlockLDLQ with scales that fit it: code with the start scales, refit them for the layer error those codes
    leave (refit_scales), and code again, until a pass gains less than LDLQ_TOLERANCE or after LDLQ_PASSES. Rows
    are independent in the layer error, so each row keeps the pass that served it best. W (out, n_pad), H
    (n_pad, n_pad), scale (out, G). Returns codes, start (or None) and the scales (out, G) float32."""
    best = None  # (errors (out,), codes, start, scale)
    factor = ldlq_factor(H, W.shape[1], damp)  # the same H every pass: factored once
    for _ in range(LDLQ_PASSES):
        scale = store_scales(scale, allow_zero=True).float()  # fixed during a pass
        codes, start, x_hat = block_ldlq(W, H, coder, scale, block, damp, factor)
        scale = store_scales(refit_scales(W, x_hat, H, scale), allow_zero=True).float()
        err = layer_errors(W, x_hat, scale, H)  # (out,)
        if best is None:
            best = (err, codes, start, scale)
            continue
        before = best[0].sum()
        won = err < best[0]  # (out,)
        best = (
            torch.where(won, err, best[0]),
            torch.where(won.unsqueeze(1), codes, best[1]),
            None if start is None else torch.where(won.unsqueeze(1), start, best[2]),
            torch.where(won.unsqueeze(1), scale, best[3]),
        )
        if before - best[0].sum() <= LDLQ_TOLERANCE * before:
            break
    return best[1], best[2], best[3]


# BlockLDLQ (Tseng et al. 2024, QuIP# section 4.3): GPTQ's column-by-column feedback (Frantar et al. 2022) with a
# vector quantizer, one block of B columns at a time. With U the upper Cholesky factor of H^-1, after block b is
# coded its error, carried through U's diagonal block, corrects every later column:
#     E_b = (W_b - Q_b) U_bb^-1;   W[:, later] -= E_b U_b,later
# For B = 1 this is GPTQ's update exactly. Scales are fixed before the loop (static, like GPTQ's act-order groups).
def ldlq_factor(H: torch.Tensor, n: int, damp: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(U, dead): the upper Cholesky factor of (H + lambda I)^-1, (n, n), and H's dead inputs (n,) bool."""
    H32, dead = prepare_hessian(H, n)  # (n, n)
    return inverse_cholesky(H32, damp), dead


def block_ldlq(
    W: torch.Tensor, H: torch.Tensor, coder: Coder, scale: torch.Tensor, block: int, damp: float, factor=None
):
    """Code W (out, n_pad) float32 with feedback from H (n_pad, n_pad). scale (out, G) float32, fixed; a group
    holds whole blocks. `factor`: ldlq_factor(H, n_pad, damp) where the caller has it already. Returns codes
    (out, C), start (out, S) or None."""
    W = W.clone()
    out, n = W.shape
    U, dead = factor if factor is not None else ldlq_factor(H, n, damp)  # (n, n), (n,)
    W[:, dead] = 0.0
    per_group = n // scale.shape[1]
    codes, starts, x_hats = [], [], []
    for b0 in range(0, n, block):
        b1 = b0 + block
        s = scale[:, b0 // per_group].unsqueeze(-1)  # (out, 1)
        safe = torch.where(s > 0, s, torch.ones_like(s))
        c, st, x_hat = coder(W[:, b0:b1] / safe)  # (out, block / dim), (out,) or None, (out, block)
        E = torch.linalg.solve_triangular(U[b0:b1, b0:b1], W[:, b0:b1] - x_hat * s, upper=True, left=False)
        W[:, b1:].addmm_(E, U[b0:b1, b1:], alpha=-1)  # (out, n - b1): every later column, corrected
        codes.append(c)
        starts.append(st)
        x_hats.append(x_hat)
    start = None if starts[0] is None else torch.stack(starts, 1).reshape(out, -1)
    return torch.cat(codes, 1), start, torch.cat(x_hats, 1)
