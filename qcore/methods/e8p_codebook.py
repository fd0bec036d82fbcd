"""E8P: QuIP#'s 2-bit code book of 2**16 points of the shifted E8 lattice, and an exact nearest-codeword search.

Tseng, Chee, Sun, Kuleshov, De Sa, "QuIP#: Even Better LLM Quantization with Hadamard Incoherence and Lattice
Codebooks", ICML 2024 (arXiv:2402.04396), the E8P code book; checked against the authors' write-up
(Cornell-RelaxML/quip-sharp, docs/index.md, "E8P Codebook") and code (lib/codebook/latticee8_padded12.py).

E8 = {x in Z^8 or (Z + 1/2)^8 : sum(x) even}; D8^ = D8 + 1/2 is its half-integer part. E8P quantizes 8 weights
with 16 bits (2 bits per weight), and every codeword lies in E8 + 1/4 = (D8^ + 1/4) u (D8^ - 1/4):
  * 256 source points a, entries in {1/2, 3/2, 5/2} (absolute values of points of D8^): the 227 with
    |a|^2 <= 10 (every such pattern: |D8^| in the ball of radius sqrt(10)), in lexicographic order, then 29 of
    the 56 with |a|^2 = 12 that have five 3/2 and three 1/2, in the order of QuIP#'s list (the version after
    its fix of a duplicated entry). 256 sources take 8 bits.
  * signs: a pattern is allowed when the number of negated entries has the parity of sum(a), so that the
    signed point has an even sum and lies in D8^ (negating a half-integer changes the sum's parity): 128
    patterns per source, 7 free bits, the 8th implied;
  * shift: +1/4 or -1/4 on every coordinate (1 bit). A +1/4 codeword minus 1/4 is in D8^ (all half-integers,
    even sum), a -1/4 codeword minus 1/4 is in D8 (all integers, even sum): both are in E8. The 65536
    codewords are distinct (the two shifts differ mod 1: 3/4 against 1/4).

Bit layout of a code c in [0, 65536), the one of the write-up's worked example:
  * bits 15..8: the source index, c >> 8;
  * bits 7..1: the signs of coordinates 1..7, bit 8 - i set when coordinate i is negative;
  * the sign of coordinate 0 is not stored: it is negative when the parity rule needs one more negation;
  * bit 0: the shift, 1 for +1/4 and 0 for -1/4.
QuIP#'s released kernels (its "version 1" packing) permute the low byte differently; the source table is the same.

The nearest codeword of x for a shift t is found from y = x - t without visiting the 65536 points:
|y - s*a|^2 = |y|^2 - 2 sum(s_i a_i y_i) + |a|^2 is least for the signs s = sign(y), unless their number of
negatives has the wrong parity for a; then exactly one sign must differ, at the coordinate where 4 a_i |y_i|,
its cost, is least. The 227 small sources are every arrangement of seven multisets ("shapes"), so by the
rearrangement inequality the best arrangement of a shape puts its values in the order of sorted |y|; with the
wrong parity its smallest value, 1/2, sits on the smallest |y|, which is the cheapest flip. That leaves 7
shape scores per row and shift (the norm-12 multiset gives an upper bound for the 29 norm-12 sources, which are
scored one by one only on the rows where that bound beats the best small source), instead of 65536 distances.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cache

import torch

from ..errors import QcoreError
from .common import check_finite

NUM_CODES = 1 << 16
DIM = 8
SHIFT = 0.25
# The 29 norm-12 sources in QuIP#'s order, each given by the coordinates of its three 1/2 entries (the other
# five are 3/2).
NORM12_HALVES = (
    (1, 2, 3), (0, 2, 3), (0, 1, 3), (0, 1, 2), (3, 6, 7), (3, 5, 7), (3, 4, 7), (3, 5, 6), (3, 4, 6), (3, 4, 5),
    (2, 6, 7), (2, 5, 7), (2, 4, 7), (2, 5, 6), (2, 4, 6), (2, 4, 5), (1, 6, 7), (1, 5, 7), (1, 4, 7), (1, 5, 6),
    (1, 4, 6), (0, 4, 5), (0, 6, 7), (0, 5, 7), (0, 4, 7), (0, 5, 6), (0, 4, 6), (0, 1, 4), (2, 3, 7),
)  # fmt: skip
SIGN_WEIGHTS = tuple(1 << (8 - i) for i in range(1, DIM))  # code bit of coordinate i's sign: 128 .. 2
# Rows searched at once. Every per-chunk tensor then has fewer than 32768 elements, torch's grain size, so torch
# runs each op on the calling thread: on a busy machine a threaded op waits for a time slice (measured here:
# 2 threads took 20-100 s for 2**21 rows in chunks of 2**14, 1 thread 3 s). Ops that thread at any size
# (matmul, max with indices, advanced indexing, round) are avoided for the same reason.
ROWS_PER_CHUNK = 3584  # (C, 9) cumulative sums: 32256 elements
NORM12_ROWS = 1024  # rows scored against the 29 norm-12 sources at once: (1024, 29)
GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass(frozen=True)
class E8PTables:
    """Everything the code book is built and searched from (float32 unless said)."""

    sources: torch.Tensor  # (256, 8) the source points
    odd: torch.Tensor  # (256,) bool: sum(source) is odd (an odd number of negations is needed)
    shapes: torch.Tensor  # (8, 8) ascending multisets: the 7 of the small sources (lexicographic), then the norm-12 one
    shape_odd: torch.Tensor  # (8,) bool: the shape's sum is odd
    shape_top: torch.Tensor  # (2, 8) int64: per shape, how many of its values are >= 3/2, and how many are 5/2
    shape_norm2: torch.Tensor  # (8,) |shape|^2
    norm12: torch.Tensor  # (29, 8) the norm-12 sources (all with odd sum)
    halves: torch.Tensor  # (3, 29) int64: the coordinates of each norm-12 source's 1/2 entries
    lookup: torch.Tensor  # (3**8,) int64: source index of the pattern with digits (a_i - 1/2) in base 3, or -1


@cache
def e8p_tables() -> E8PTables:
    """The source points and the tables of the search, built once (treat as read-only)."""
    small = [v for v in itertools.product((0.5, 1.5, 2.5), repeat=DIM) if sum(t * t for t in v) <= 10]  # 227
    norm12 = torch.full((len(NORM12_HALVES), DIM), 1.5)  # (29, 8)
    for row, halves in zip(norm12, NORM12_HALVES, strict=True):
        row[list(halves)] = 0.5
    sources = torch.cat([torch.tensor(small), norm12])  # (256, 8)
    shapes = torch.unique(sources.sort(dim=1).values, dim=0)  # (8, 8): the norm-12 shape sorts last
    top = torch.stack([(shapes >= 1.5).sum(1), (shapes >= 2.5).sum(1)])  # (2, 8)
    lookup = torch.full((3**DIM,), -1, dtype=torch.int64)
    lookup[pattern_keys(sources)] = torch.arange(len(sources))
    halves = torch.tensor(NORM12_HALVES).T.contiguous()  # (3, 29)
    return E8PTables(sources, sources.sum(1) % 2 == 1, shapes, shapes.sum(1) % 2 == 1, top,
                     shapes.square().sum(1), norm12, halves, lookup)  # fmt: skip


def pattern_keys(a: torch.Tensor) -> torch.Tensor:
    """(C, 8) patterns with entries in {1/2, 3/2, 5/2} -> (C,) int64 keys sum((a_i - 1/2) * 3**i), exact."""
    return ((a - 0.5) * torch.tensor([3.0**i for i in range(DIM)])).sum(1).long()


def e8p_sources() -> torch.Tensor:
    """The 256 source points (absolute values), (256, 8) float32, in code order (a new tensor)."""
    return e8p_tables().sources.clone()


def e8p_decode(codes: torch.Tensor) -> torch.Tensor:
    """Codewords of 16-bit codes: codes (...) of any integer dtype in [0, 65536) -> (..., 8) float32.

    Follows the bit layout of the module docstring; equal to e8p_codebook()[codes].
    """
    if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool:
        raise QcoreError(f"E8P codes must be integers, got {codes.dtype}")
    c = codes.long()
    if c.numel() and (int(c.min()) < 0 or int(c.max()) >= NUM_CODES):
        raise QcoreError(f"E8P codes must lie in [0, {NUM_CODES}), got {int(c.min())} .. {int(c.max())}")
    tab = e8p_tables()
    source = (c >> 8).reshape(-1)  # (M,) index_select, not advanced indexing, which threads at any size
    a = tab.sources.index_select(0, source).reshape(*c.shape, DIM)  # (..., 8)
    bits = (c.unsqueeze(-1) >> torch.arange(DIM - 1, 0, -1)) & 1  # (..., 7): signs of coordinates 1..7
    first = (bits.sum(-1) + tab.odd.index_select(0, source).reshape(c.shape)) & 1  # (...): completes the parity
    negative = torch.cat([first.unsqueeze(-1), bits], dim=-1)  # (..., 8)
    shift = torch.where(c & 1 == 1, SHIFT, -SHIFT).unsqueeze(-1)  # (..., 1)
    return a * (1 - 2 * negative).float() + shift  # (..., 8)


@cache
def cached_codebook() -> torch.Tensor:
    """The (65536, 8) code book, built once by e8p_decode."""
    return e8p_decode(torch.arange(NUM_CODES))


def e8p_codebook() -> torch.Tensor:
    """All 65536 codewords, (65536, 8) float32 (a new tensor): row c is the codeword of code c."""
    return cached_codebook().clone()


def e8p_nearest(x: torch.Tensor) -> torch.Tensor:
    """Code of the nearest codeword in Euclidean distance: x (N, 8) finite floats -> codes (N,) int32 in [0, 65536).

    Exact up to float32 rounding (the search works in float32; see the module docstring), in chunks of
    ROWS_PER_CHUNK rows, so memory stays bounded for any N. Ties, judged on the float32 scores,
    are broken deterministically: shift +1/4 before -1/4; the seven shapes (in `shapes` order) before the
    norm-12 sources (in code order); coordinates of equal |y| are ranked by index (a stable sort, so the lower
    index takes the smaller source value); a parity fix flips the lowest coordinate of least cost; y_i = 0
    counts as positive.
    """
    if x.dim() != 2 or x.shape[1] != DIM:
        raise QcoreError(f"e8p_nearest takes vectors of 8 weights, shape (N, 8); got {tuple(x.shape)}")
    check_finite(x, "x")
    x = x.float()
    codes = torch.empty(x.shape[0], dtype=torch.int32)
    for i0 in range(0, x.shape[0], ROWS_PER_CHUNK):
        xc = x[i0 : i0 + ROWS_PER_CHUNK]  # (C, 8)
        score_plus, code_plus = search_shift(xc, SHIFT)  # (C,), (C,)
        score_minus, code_minus = search_shift(xc, -SHIFT)
        # |x + 1/4|^2 - |x - 1/4|^2 = sum(x): the -1/4 codeword is nearer when its score gain exceeds that
        minus = score_minus - score_plus > xc.sum(1)  # (C,)
        codes[i0 : i0 + ROWS_PER_CHUNK] = torch.where(minus, code_minus, code_plus)
    return codes


def search_shift(x: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Best codeword with shift t for each row of x (C, 8): (score (C,), code (C,) int32), where
    score = 2 <x - t, c - t> - |c - t|^2, so |x - c|^2 = |x - t|^2 - score."""
    tab = e8p_tables()
    y = x - t  # (C, 8)
    r = y.abs()
    negative = y < 0  # (C, 8)
    odd = negative.sum(1) % 2 == 1  # (C,): sign(y) has an odd number of negatives
    order = sort_order(r)  # (C, 8)
    r_sorted = torch.gather(r, 1, order)  # (C, 8) ascending
    shape_score = score_shapes(r_sorted, odd)  # (C, 8)
    best = shape_score[:, :-1].argmax(1)  # (C,) first of the equal best small shapes
    score = torch.gather(shape_score, 1, best.unsqueeze(1)).squeeze(1)  # (C,)
    a = torch.zeros_like(r).scatter_(1, order, tab.shapes.index_select(0, best))  # (C, 8) the source, arranged
    hopeful = (shape_score[:, -1] > score).nonzero().squeeze(1)  # (H,) rows where a norm-12 source may win
    for rows in hopeful.split(NORM12_ROWS):
        score_12, a_12 = search_norm12(r.index_select(0, rows), r_sorted[:, 0].index_select(0, rows),
                                       odd.index_select(0, rows))  # fmt: skip
        wins = (score_12 > score.index_select(0, rows)).nonzero().squeeze(1)  # strictly: ties keep the small
        score.index_copy_(0, rows.index_select(0, wins), score_12.index_select(0, wins))
        a.index_copy_(0, rows.index_select(0, wins), a_12.index_select(0, wins))
    source = tab.lookup.index_select(0, pattern_keys(a))  # (C,)
    return score, encode(source, a, r, negative, tab.odd.index_select(0, source) != odd, t)


def sort_order(r: torch.Tensor) -> torch.Tensor:
    """Ascending order of each row of r (C, 8) >= 0, ties by index, as (C, 8) int64: a sort of unique int64 keys
    (float bits, which order like the values for r >= 0, then the index), faster than a stable float sort."""
    keys = (r.view(torch.int32).long() << 3) | torch.arange(DIM)  # (C, 8)
    return torch.sort(keys, dim=1).values & (DIM - 1)


def score_shapes(r_sorted: torch.Tensor, odd: torch.Tensor) -> torch.Tensor:
    """Score (C, 8) of the best arrangement of each shape b on ascending |y| = r_sorted (C, 8) with sign parity odd.

    Values in the order of |y| give 2 b.r - |b|^2 = sum(r) + 2 (T_m + T_n) - |b|^2, T_k the sum of the k largest
    |y|, m and n the counts of b's values >= 3/2 and = 5/2; a parity mismatch costs the flip 2 r_(1). Exact for
    the 7 small shapes, an upper bound for the 29 norm-12 sources.
    """
    tab = e8p_tables()
    T = torch.cat([torch.zeros_like(r_sorted[:, :1]), r_sorted.flip(1).cumsum(1)], dim=1)  # (C, 9): T_0 .. T_8
    score = T.index_select(1, tab.shape_top[0]) + T.index_select(1, tab.shape_top[1])  # (C, 8)
    score = 2 * score + (T[:, DIM:] - tab.shape_norm2)
    return score - (tab.shape_odd ^ odd.unsqueeze(1)) * (2 * r_sorted[:, :1])


def search_norm12(r: torch.Tensor, r_min: torch.Tensor, odd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Best norm-12 source for |y| = r (H, 8) with min |y| r_min (H,) and parity odd (H,): (score (H,), a (H, 8))."""
    tab = e8p_tables()
    score = torch.full((len(r), len(tab.norm12)), -12.0)  # (H, 29)
    for i in range(DIM):
        score += r[:, i : i + 1] * (2 * tab.norm12[:, i])
    # the parity flip costs 4 a_i |y_i|: 2 |y_i| on a 1/2 entry, or 6 |y_i| on a 3/2 one, then on the smallest |y|
    halves = [r.index_select(1, h) for h in tab.halves]  # 3 x (H, 29)
    cost = torch.minimum(2 * halves[0].minimum(halves[1]).minimum(halves[2]), 6 * r_min.unsqueeze(1))  # (H, 29)
    score -= cost * ~odd.unsqueeze(1)  # all 29 are odd: y's signs need a flip when they are even
    best = score.argmax(1)  # (H,)
    return torch.gather(score, 1, best.unsqueeze(1)).squeeze(1), tab.norm12.index_select(0, best)


def encode(
    source: torch.Tensor, a: torch.Tensor, r: torch.Tensor, negative: torch.Tensor, fix: torch.Tensor, t: float
) -> torch.Tensor:
    """16-bit codes (C,) int32 of source indices (C,), their patterns a (C, 8) on |y| = r (C, 8), the signs of y
    (negative (C, 8) bool) and whether the parity needs one flip, at the cheapest coordinate (fix (C,) bool)."""
    signs = (negative[:, 1:] * torch.tensor(SIGN_WEIGHTS)).sum(1)  # (C,) int64: bits 7..1
    flip = torch.tensor((0, *SIGN_WEIGHTS)).index_select(0, (a * r).argmin(1))  # (C,) 0 for coordinate 0: implied
    return ((source << 8) | (signs ^ flip * fix) | int(t > 0)).int()


def quantization_error(W: torch.Tensor, s: float) -> float:
    """sum |W - s * Q(W / s)|^2 for W (N, 8), Q the nearest E8P codeword."""
    W_q = cached_codebook().index_select(0, e8p_nearest(W / s).long()) * s  # (N, 8)
    return float((W - W_q).double().square().sum())


def gaussian_mse(samples: int = 1 << 20, seed: int = 0) -> tuple[float, float]:
    """Normalized MSE of E8P on i.i.d. N(0, 1) weights with the best single scale, and that scale.

    samples weights (a multiple of 8, cut into 8-weight vectors) drawn with torch's generator seeded by seed;
    W_hat = s * codebook[e8p_nearest(W / s)], and D = sum (W - W_hat)^2 / sum W^2 is minimised over s by a
    golden-section search on [0.5, 2] to a bracket of 1e-4 (D is unimodal there, as a grid shows; the optimum is
    near 0.965). Returns (D, s).
    """
    if samples < DIM or samples % DIM:
        raise QcoreError(f"samples must be a positive multiple of 8, got {samples}")
    W = torch.randn(samples // DIM, DIM, generator=torch.Generator().manual_seed(seed))  # (N, 8)
    lo, hi = 0.5, 2.0
    m1, m2 = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
    e1, e2 = quantization_error(W, m1), quantization_error(W, m2)
    while hi - lo > 1e-4:
        if e1 <= e2:
            hi, m2, e2 = m2, m1, e1
            m1 = hi - GOLDEN * (hi - lo)
            e1 = quantization_error(W, m1)
        else:
            lo, m1, e1 = m1, m2, e2
            m2 = lo + GOLDEN * (hi - lo)
            e2 = quantization_error(W, m2)
    s, err = (m1, e1) if e1 <= e2 else (m2, e2)
    return err / float(W.double().square().sum()), s
