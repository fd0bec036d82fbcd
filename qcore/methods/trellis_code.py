"""QTIP's bitshift trellis: a computed Gaussian code, exact Viterbi encoding, and decoding.

Tseng, Sun, Hou, De Sa, "QTIP: Quantization with Trellises and Incoherence Processing", NeurIPS 2024
(arXiv:2406.11235), sections 3-4. A sequence of T weights x_0..x_{T-1} (already scaled to unit variance) is
coded as a bit stream: L - k start bits, then one k-bit symbol b_t per weight. The state of weight t is the last
L bits of the stream,
    state_t = ((state_{t-1} << k) | b_t) mod 2^L,    state_{-1} = start,
so state_0 = (start << k) | b_0, and the reconstruction of weight t is x_hat_t = code[state_t]. The code is
computed from the state (`gaussian_code`), so nothing is trained or stored but the stream.

Start rule. The encoder chooses the L - k start bits freely, with the symbols, and they are stored with them:
L - k extra bits per sequence, (L - k) / T bits per weight (k + 8/256 = 2.031 at L = 10, k = 2, T = 256). With
it, Viterbi is exact in one pass over the 2^L states. QTIP instead makes the trellis tail-biting (the first
state's high bits are the last state's low bits), which costs no bits but is exact only with 2^(L-k) Viterbi runs;
QTIP approximates it with two.

Symbols are uint8 in [0, 2^k), one per weight; the start is int32 in [0, 2^(L-k)), one per sequence.

Speed, measured on the lab's shared 2-core machine (torch 2.13, one thread): a 4096 x 4096 matrix in sequences of
256 encodes in 16 s at L = 10, 31 s at L = 11, 62 s at L = 12; each extra state bit doubles it. Two threads gain
1.3-1.6x on an idle machine and lose 10x or more when another process holds a core.
"""

from __future__ import annotations

import math

import torch

from ..errors import QcoreError
from ..progress import Progress
from .common import check_finite

MIN_L, MAX_L = 4, 16
MAD_A, MAD_B = 34038481, 76625530  # QTIP's 1MAD multiplier and increment (mod 2^32)
CHUNK_BYTES = 2**28  # Viterbi's stored minima per chunk of sequences, (T, 2^(L-k), rows) float32: <= 256 MiB


def check_trellis(L: int, k: int) -> None:
    """L (state bits) in 4..16 and k (bits per weight) in 1..min(8, L - 1)."""
    if not isinstance(L, int) or isinstance(L, bool) or not MIN_L <= L <= MAX_L:
        raise QcoreError(f"trellis state bits L must be an integer from {MIN_L} to {MAX_L}; got {L}")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= min(8, L - 1):
        raise QcoreError(f"bits per weight k must be an integer from 1 to {min(8, L - 1)} for L = {L}; got {k}")


def gaussian_code(L: int) -> torch.Tensor:
    """The code value of every state: (2^L,) float32, mean 0 and variance 1 over the states.

    QTIP's "1MAD" code: one multiply-add of a 32-bit linear congruential generator, then the sum of the
    result's four bytes,
        h = (MAD_A * state + MAD_B) mod 2^32;   v = sum_{i<4} (h >> 8i) & 255,
    a sum of four roughly uniform bytes (Irwin-Hall, near-Gaussian; mean 510 and standard deviation 147.8 if the
    bytes were uniform). Each value is standardised with the mean and (population) standard deviation of v over
    the 2^L states, where QTIP subtracts 510 and divides by 147.8 (within 0.0007 of it at L = 16). Deterministic;
    values repeat (v takes at most 1021 integers), which Viterbi handles as ties.
    """
    check_trellis(L, 1)
    h = (torch.arange(2**L, dtype=torch.int64) * MAD_A + MAD_B) & 0xFFFFFFFF  # (2^L,)
    v = sum((h >> shift) & 255 for shift in (0, 8, 16, 24)).double()  # (2^L,) in [0, 1020]
    return ((v - v.mean()) / v.std(correction=0)).float()


def trellis_bits_per_weight(L: int, k: int, T: int) -> float:
    """Payload bits per weight: k per weight plus the L - k start bits of each sequence of T weights."""
    check_trellis(L, k)
    if not isinstance(T, int) or T < 1:
        raise QcoreError(f"sequence length T must be a positive integer; got {T}")
    return k + (L - k) / T


def chunk_rows(L: int, k: int, T: int) -> int:
    """Sequences per Viterbi chunk: as many as keep its stored minima within CHUNK_BYTES."""
    return max(1, CHUNK_BYTES // (T * 2 ** (L - k) * 4))


# Viterbi (1967) over QTIP's bitshift trellis, on a chunk of sequences held innermost (the last dimension), so
# every op of a step broadcasts over a leading dimension. The 2^k predecessors of state s = (m << k) | b are
# (j << (L - k)) | m for j < 2^k, the same for all 2^k states that share m = s >> k, so a step is
#     v_t[m] = min_j cost_{t-1}[(j << (L - k)) | m]        (cost viewed as (2^k, 2^(L-k), rows): min of the slabs)
#     cost_t[(m << k) | b] = v_t[m] + (code[(m << k) | b] - x_t)^2          (viewed as (2^(L-k), 2^k, rows))
# with v_0 = 0: any first state is allowed (the start rule). No argmin in the forward pass (torch's min with
# indices ran some 20x slower than an elementwise minimum here): every v_t is kept, and the backward pass
# recomputes the 2^k candidate costs of the state it stands on from v_{t-1} with the same three float ops
# (subtract, square, add), so it finds the forward pass's minimum bit for bit.
def viterbi_chunk(X: torch.Tensor, code: torch.Tensor, L: int, k: int, work: torch.Tensor) -> torch.Tensor:
    """Optimal states of X (rows, T) float32 under `code` (2^L,) float32. Returns (T, rows) int64.

    work: float32 scratch of at least T * 2^(L-k) * rows elements, reused across chunks (fresh memory pays a page
    fault per 4 KiB on its first write: some 40% of the run at L = 10 when each chunk allocated its own).
    """
    rows, T = X.shape
    K, M = 2**k, 2 ** (L - k)
    Xt = X.T.contiguous()  # (T, rows)
    V = work[: T * M * rows].view(T, M, rows)  # v_t: the best cost of any path entering group m at step t
    V[0] = 0
    cost = torch.empty(2**L, rows)  # (2^L, rows)
    col = code.view(-1, 1)  # (2^L, 1)
    for t in range(T):
        if t:
            slabs = cost.view(K, M, rows)  # slab j: the states whose shifted-out bits are j
            torch.minimum(slabs[0], slabs[1], out=V[t])  # (M, rows)
            for j in range(2, K):
                torch.minimum(V[t], slabs[j], out=V[t])
        torch.sub(col, Xt[t], out=cost)  # (2^L, rows)
        cost.mul_(cost)
        cost.view(M, K, rows).add_(V[t].view(M, 1, rows))
    states = torch.empty(T, rows, dtype=torch.int64)  # (T, rows)
    s = cost.argmin(0)  # (rows,)
    states[T - 1] = s
    high = torch.arange(K) << (L - k)  # (K,) the bits a predecessor shifts out
    column = torch.arange(rows).view(rows, 1)  # (rows, 1)
    for t in range(T - 1, 0, -1):  # (rows, K) candidates: torch's argmin over a leading dim of size K is slow
        m = s >> k  # (rows,)
        p = m.view(rows, 1) | high  # (rows, K) the predecessors of s
        d = code[p] - Xt[t - 1].view(rows, 1)  # (rows, K)
        v = V[t - 1].take((p >> k) * rows + column)  # (rows, K) v_{t-1} of each predecessor's group
        s = ((d * d + v).argmin(1) << (L - k)) | m  # (rows,)
        states[t - 1] = s
    return states


def viterbi(x: torch.Tensor, L: int, k: int = 2, progress: Progress | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode sequences x (S, T) float32 (unit variance) with the bitshift trellis of L state bits, k per weight.

    Returns symbols (S, T) uint8 in [0, 2^k) and start (S,) int32 in [0, 2^(L-k)): the stream that minimises
    sum_t (x_t - gaussian_code(L)[state_t])^2 for each sequence, exactly (a tie goes to the smaller state, decided
    from the last weight backwards).
    Works in chunks of `chunk_rows` sequences and reports progress(done, S, label) after each.
    """
    check_trellis(L, k)
    if x.dim() != 2 or x.numel() == 0:
        raise QcoreError(f"viterbi codes (sequences, length) with both sizes > 0; got shape {tuple(x.shape)}")
    X = x.detach().float()  # (S, T)
    check_finite(X, "the sequences")
    S, T = X.shape
    code = gaussian_code(L)  # (2^L,)
    rows = min(S, chunk_rows(L, k, T))
    work = torch.empty(T * 2 ** (L - k) * rows)
    symbols = torch.empty(S, T, dtype=torch.uint8)
    start = torch.empty(S, dtype=torch.int32)
    for r in range(0, S, rows):
        states = viterbi_chunk(X[r : r + rows], code, L, k, work)  # (T, rows)
        symbols[r : r + rows] = (states & (2**k - 1)).T
        start[r : r + rows] = states[0] >> k
        if progress:
            done = min(r + rows, S)
            progress(done, S, f"trellis L={L}: {done} of {S} sequences")
    return symbols, start


def trellis_states(symbols: torch.Tensor, start: torch.Tensor, L: int, k: int = 2) -> torch.Tensor:
    """The state of every weight: symbols (S, T) uint8 and start (S,) int -> (S, T) int64 in [0, 2^L).

    state_t is the L bits of the stream that end with symbol t: symbols t, t-1, ... and then the start bits.
    """
    check_trellis(L, k)
    S, T = symbols.shape
    if start.shape != (S,):
        raise QcoreError(f"start must hold one value per sequence, shape ({S},); got {tuple(start.shape)}")
    b = symbols.long()  # (S, T)
    if bool(((b < 0) | (b >= 2**k)).any()) or bool(((start < 0) | (start >= 2 ** (L - k))).any()):
        raise QcoreError(f"symbols must lie in [0, {2**k}) and start in [0, {2 ** (L - k)}) for L = {L}, k = {k}")
    shift = (k * torch.arange(1, T + 1)).clamp_(max=L)  # (T,) where the start bits sit in state_t
    states = start.long().view(S, 1) << shift  # (S, T)
    for i in range(min(T, math.ceil(L / k))):
        states[:, i:] |= b[:, : T - i] << (k * i)  # symbol t - i
    return states & (2**L - 1)


def decode(symbols: torch.Tensor, start: torch.Tensor, L: int, k: int = 2) -> torch.Tensor:
    """Reconstruct sequences from symbols (S, T) uint8 and start (S,) int: (S, T) float32, code[state_t]."""
    return gaussian_code(L)[trellis_states(symbols, start, L, k)]
