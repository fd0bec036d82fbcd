"""The bitshift trellis against plain references: brute force over every stream, a textbook float64 Viterbi,
and the stream read as one integer; and the properties of its Gaussian code and of its error on Gaussian data."""

import math
import random

import pytest
import torch

from qcore.errors import QcoreError
from qcore.methods import trellis_code
from qcore.methods.trellis_code import decode, gaussian_code, trellis_bits_per_weight, trellis_states, viterbi

pytestmark = pytest.mark.usefixtures("one_thread")  # small problems: see conftest.one_thread
LLOYD_MAX_2BIT = 0.1175  # the best scalar 2-bit quantizer's normalized MSE on N(0, 1)
SHANNON_2BIT = 2.0**-4  # the distortion-rate bound D(R) = 2^(-2R) at R = 2 bits per sample


def gaussian(S: int, T: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(S, T, generator=torch.Generator().manual_seed(seed))


def streams(L: int, k: int, T: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every stream of L - k start bits then T k-bit symbols, as one integer n (start bits first): the state of
    weight t is the L bits of n that end with symbol t. Returns states (N, T), symbols (N, T) uint8, start (N,)."""
    n = torch.arange(2 ** (L - k + k * T))  # (N,)
    shift = k * (T - 1 - torch.arange(T))  # (T,) where symbol t ends
    states = (n[:, None] >> shift) & (2**L - 1)  # (N, T)
    return states, ((n[:, None] >> shift) & (2**k - 1)).to(torch.uint8), (n >> (k * T)).to(torch.int32)


def sq_error(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    return (x.double() - x_hat.double()).square().sum(-1)  # (S,)


def textbook_viterbi(x: torch.Tensor, L: int, k: int) -> torch.Tensor:
    """The minimum squared error per sequence, float64: cost over all 2^L states, and at each step every state takes
    the cheapest of its predecessors (s >> k) | (j << (L - k)), j < 2^k. Any first state. Returns (S,)."""
    code = gaussian_code(L).double()
    s = torch.arange(2**L)
    preds = torch.stack([(s >> k) | (j << (L - k)) for j in range(2**k)])  # (2^k, 2^L)
    cost = (x.double()[:, :1] - code).square()  # (S, 2^L)
    for t in range(1, x.shape[1]):
        cost = cost[:, preds].amin(1) + (x.double()[:, t : t + 1] - code).square()
    return cost.amin(1)


SMALL = [(L, k, T) for L, k in [(4, 2), (6, 2), (5, 2), (6, 1), (6, 3)] for T in range(1, 7) if L - k + k * T <= 16]


@pytest.mark.parametrize("L, k, T", SMALL)
def test_viterbi_equals_brute_force(L, k, T):
    x = gaussian(6, T, seed=100 * L + 10 * k + T) * 1.5
    states, _, _ = streams(L, k, T)
    best = sq_error(x[:, None, :], gaussian_code(L)[states][None]).amin(1)  # (S,) over every stream
    symbols, start = viterbi(x, L, k)
    torch.testing.assert_close(sq_error(x, decode(symbols, start, L, k)), best, rtol=0, atol=1e-5)


@pytest.mark.parametrize("L, k", [(8, 2), (10, 2), (7, 3)])
def test_viterbi_equals_textbook_viterbi_on_long_sequences(L, k):
    x = gaussian(12, 200, seed=L)
    symbols, start = viterbi(x, L, k)
    torch.testing.assert_close(sq_error(x, decode(symbols, start, L, k)), textbook_viterbi(x, L, k), rtol=1e-6, atol=0)


def test_viterbi_shapes_dtypes_and_ranges():
    L, k = 8, 2
    x = gaussian(33, 47).double()  # float64 input is coded as float32
    symbols, start = viterbi(x, L, k)
    assert symbols.shape == (33, 47) and symbols.dtype == torch.uint8
    assert start.shape == (33,) and start.dtype == torch.int32
    assert int(symbols.max()) < 2**k and int(start.min()) >= 0 and int(start.max()) < 2 ** (L - k)
    x_hat = decode(symbols, start, L, k)
    assert x_hat.shape == (33, 47) and x_hat.dtype == torch.float32
    assert bool(torch.isin(x_hat, gaussian_code(L)).all())


def test_decode_reads_the_stream_as_one_integer():
    """decode against the stream held as a Python integer, read bit by bit: T = 40 symbols, 16-bit states."""
    L, k, T = 16, 2, 40
    rng = random.Random(0)
    ints = [rng.getrandbits(L - k + k * T) for _ in range(5)]
    symbols = torch.tensor([[(n >> (k * (T - 1 - t))) & (2**k - 1) for t in range(T)] for n in ints], dtype=torch.uint8)
    start = torch.tensor([n >> (k * T) for n in ints], dtype=torch.int32)
    want = torch.tensor([[(n >> (k * (T - 1 - t))) & (2**L - 1) for t in range(T)] for n in ints])
    assert torch.equal(trellis_states(symbols, start, L, k), want)
    assert torch.equal(decode(symbols, start, L, k), gaussian_code(L)[want])


@pytest.mark.parametrize("L, k, T", [(4, 2, 1), (6, 2, 3), (5, 2, 4), (6, 3, 2)])
def test_decode_of_every_stream(L, k, T):
    states, symbols, start = streams(L, k, T)
    assert torch.equal(trellis_states(symbols, start, L, k), states)


@pytest.mark.parametrize("L, k, T", [(6, 2, 3), (5, 2, 4), (6, 3, 2)])
def test_bits_per_weight_name_every_state_sequence_once(L, k, T):
    """The payload is exactly what it takes: 2^(bits per weight * T) streams give as many distinct state walks."""
    states, _, _ = streams(L, k, T)
    assert len(torch.unique(states, dim=0)) == 2 ** round(trellis_bits_per_weight(L, k, T) * T)


def test_bits_per_weight_pinned():
    assert trellis_bits_per_weight(10, 2, 256) == 2.03125
    assert trellis_bits_per_weight(16, 2, 256) == 2.0546875
    assert trellis_bits_per_weight(12, 3, 64) == 3.140625


def test_chunks_change_nothing_and_report_progress(monkeypatch):
    L, k, T = 6, 2, 30
    x = gaussian(10, T, seed=3)
    whole = viterbi(x, L, k)
    calls = []
    monkeypatch.setattr(trellis_code, "CHUNK_BYTES", 3 * T * 2 ** (L - k) * 4)  # 3 sequences a chunk
    chunked = viterbi(x, L, k, progress=lambda done, total, label: calls.append((done, total)))
    assert torch.equal(chunked[0], whole[0]) and torch.equal(chunked[1], whole[1])
    assert calls == [(3, 10), (6, 10), (9, 10), (10, 10)]


@pytest.mark.parametrize("L", range(4, 17))
def test_gaussian_code_is_standardised_and_deterministic(L):
    code = gaussian_code(L)
    assert code.shape == (2**L,) and code.dtype == torch.float32
    assert abs(float(code.double().mean())) < 1e-6
    assert float(code.double().var(correction=0)) == pytest.approx(1.0, abs=1e-5)
    assert torch.equal(code, gaussian_code(L))


def test_gaussian_code_pinned():
    want = [-1.054616, -0.530796, -0.006977, 0.516842, 1.040662, -0.625256, -0.101436, 0.422383]
    torch.testing.assert_close(gaussian_code(4)[:8], torch.tensor(want), rtol=0, atol=1e-6)


@pytest.mark.parametrize("L", [12, 16])
def test_gaussian_code_histogram_is_close_to_normal(L):
    """Kolmogorov-Smirnov distance between the values' empirical CDF and the standard normal CDF."""
    values = gaussian_code(L).double().sort().values
    n = len(values)
    phi = 0.5 * (1 + torch.erf(values / math.sqrt(2)))  # (n,)
    ks = max(float((phi - torch.arange(n) / n).abs().max()), float((phi - torch.arange(1, n + 1) / n).abs().max()))
    assert ks < 0.05


def test_error_on_gaussian_data_falls_with_state_bits():
    x = gaussian(512, 256, seed=7)
    D = []
    for L in (6, 8, 10, 12):
        x_hat = decode(*viterbi(x, L), L)
        D.append(float((x - x_hat).square().sum() / x.square().sum()))
    assert D == sorted(D, reverse=True) and len(set(D)) == len(D)
    assert all(d < LLOYD_MAX_2BIT for d in D[1:])  # L >= 8 beats every scalar 2-bit quantizer
    assert all(d > SHANNON_2BIT for d in D)


@pytest.mark.parametrize("L, k", [(3, 2), (17, 2), (4.0, 2), (8, 0), (8, 8), (16, 9), (True, 1)])
def test_bad_trellis_is_refused(L, k):
    with pytest.raises(QcoreError):
        viterbi(gaussian(2, 8), L, k)


def test_bad_input_is_refused():
    with pytest.raises(QcoreError, match="shape"):
        viterbi(torch.zeros(8), 8)
    with pytest.raises(QcoreError, match="NaN"):
        viterbi(torch.tensor([[0.0, float("nan")]]), 8)
    with pytest.raises(QcoreError, match="symbols"):
        decode(torch.full((1, 4), 4, dtype=torch.uint8), torch.zeros(1, dtype=torch.int32), 8, 2)
    with pytest.raises(QcoreError, match="start"):
        decode(torch.zeros(1, 4, dtype=torch.uint8), torch.full((1,), 64, dtype=torch.int32), 8, 2)
    with pytest.raises(QcoreError, match="one value per sequence"):
        decode(torch.zeros(2, 4, dtype=torch.uint8), torch.zeros(3, dtype=torch.int32), 8, 2)
