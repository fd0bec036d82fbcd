"""The incoherence rotation against plain dense references: Sylvester matrices built by Kronecker products, Paley
matrices checked by H H^T = p I, orthonormality for any n, exact round trips, and the spreading of an outlier."""

import math

import pytest
import torch

from qcore.errors import QcoreError
from qcore.methods.rotation import Rotation, describe, hadamard, make_rotation, paley_matrix

ANY_N = (1, 2, 3, 5, 10, 12, 24, 40, 96, 384, 1536, 3000)
SHAPES = ((1, 7), (7, 1), (10, 384), (384, 1536), (33, 10), (64, 64))


def gaussian(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def sylvester(n: int) -> torch.Tensor:
    """The orthonormal (n, n) Sylvester matrix in float64: Kronecker powers of [[1, 1], [1, -1]], over sqrt(n)."""
    H = torch.ones(1, 1, dtype=torch.float64)
    while H.shape[0] < n:
        H = torch.kron(H, torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64))
    return H / math.sqrt(n)


def matrix_of(n: int, inverse: bool = False) -> torch.Tensor:
    """The (n, n) matrix the transform applies: hadamard(e_i) is its column i."""
    return hadamard(torch.eye(n), inverse=inverse).T


def rel_err(A: torch.Tensor, B: torch.Tensor) -> float:
    return float((A.double() - B.double()).norm() / B.double().norm())


def peak_to_rms(W: torch.Tensor) -> float:
    return float(W.abs().max() / W.pow(2).mean().sqrt())


@pytest.mark.parametrize("n", [2**k for k in range(11)])
def test_fast_transform_equals_dense_sylvester(n):
    X = gaussian(5, n)
    assert rel_err(hadamard(X), X.double() @ sylvester(n).T) <= 1e-6


@pytest.mark.parametrize("p", (12, 20, 28, 44, 60))
def test_paley_matrix_is_hadamard(p):
    H = paley_matrix(p)
    assert H.shape == (p, p)
    assert bool(((H == 1) | (H == -1)).all())
    assert torch.equal(H @ H.T, p * torch.eye(p))


def test_paley_matrix_refuses_orders_it_does_not_build():
    with pytest.raises(QcoreError, match="no Paley matrix of order 40"):
        paley_matrix(40)


@pytest.mark.parametrize(
    "n, expected",
    [
        (1, "Sylvester 1"),
        (1024, "Sylvester 1024"),
        (12, "12 x 1: Paley I (q=11) ⊗ Sylvester 1"),
        (28, "28 x 1: Paley II (q=13) ⊗ Sylvester 1"),
        (40, "20 x 2: Paley I (q=19) ⊗ Sylvester 2"),
        (384, "12 x 32: Paley I (q=11) ⊗ Sylvester 32"),  # not 24 x 16 or 48 x 8: the largest power of two wins
        (3, "binary blocks 2 + 1"),
        (10, "binary blocks 8 + 2"),
        (3000, "binary blocks 2048 + 512 + 256 + 128 + 32 + 16 + 8"),  # 3000 = 375 * 8 and no p <= 64 fits
    ],
)
def test_describe_names_the_structure(n, expected):
    assert describe(n) == expected


@pytest.mark.parametrize("n", ANY_N)
def test_transform_is_orthonormal_and_inverse_undoes_it(n):
    eye = torch.eye(n)
    H = hadamard(eye)  # (n, n): row i is H_n e_i
    assert (H @ H.T - eye).abs().max() <= 1e-5
    assert (hadamard(H, inverse=True) - eye).abs().max() <= 1e-5
    assert (matrix_of(n, inverse=True) - matrix_of(n).T).abs().max() <= 1e-6


def test_paley_kronecker_structure():
    """12 x 32: H_384 = (H_12 ⊗ H_32) / sqrt(384), H_12 the module's Paley matrix, H_32 Sylvester's."""
    reference = torch.kron(paley_matrix(12).double() / math.sqrt(12), sylvester(32))
    assert (matrix_of(384).double() - reference).abs().max() <= 1e-6


def test_fallback_is_block_diagonal_sylvester():
    reference = torch.block_diag(sylvester(8), sylvester(2), torch.ones(1, 1, dtype=torch.float64))  # 11 = 8+2+1
    assert (matrix_of(11).double() - reference).abs().max() <= 1e-6


def test_hadamard_works_on_leading_dims_and_keeps_its_input():
    X = gaussian(2, 3, 96)
    before = X.clone()
    Y = hadamard(X)
    assert torch.equal(X, before)
    assert Y.shape == X.shape and Y.dtype == torch.float32
    assert torch.allclose(Y, hadamard(X.reshape(6, 96)).reshape(2, 3, 96), rtol=0, atol=1e-6)


def dense_rotation(r: Rotation) -> tuple[torch.Tensor, torch.Tensor]:
    """Q_m = H_m S_U and Q_n = H_n S_V as dense float64 matrices (small shapes only)."""
    Q_m = matrix_of(r.m).double() * (1 - 2 * r.signs_u.double())  # scales column j by the sign s_j
    Q_n = matrix_of(r.n).double() * (1 - 2 * r.signs_v.double())
    return Q_m, Q_n


@pytest.mark.parametrize("m, n", SHAPES)
def test_rotation_round_trip_and_norm(m, n):
    W = gaussian(m, n, seed=m * n)
    before = W.clone()
    r = make_rotation(m, n, seed=1)
    W_rot = r.apply(W)
    assert torch.equal(W, before)
    assert (r.m, r.n) == (m, n) and W_rot.shape == (m, n) and W_rot.dtype == torch.float32
    assert rel_err(r.undo(W_rot), W) <= 1e-5
    assert abs(float(W_rot.norm() / W.norm()) - 1) <= 1e-5


@pytest.mark.parametrize("m, n", ((1, 7), (7, 1), (33, 10), (12, 40), (64, 64)))
def test_rotation_equals_dense_reference(m, n):
    W = gaussian(m, n, seed=3)
    r = make_rotation(m, n, seed=2)
    Q_m, Q_n = dense_rotation(r)
    assert rel_err(r.apply(W), Q_m @ W.double() @ Q_n.T) <= 1e-6


def test_same_seed_same_rotation_other_seed_other_signs():
    W = gaussian(33, 10)
    a, b, c = make_rotation(33, 10, seed=7), make_rotation(33, 10, seed=7), make_rotation(33, 10, seed=8)
    assert torch.equal(a.signs_u, b.signs_u) and torch.equal(a.signs_v, b.signs_v)
    assert torch.equal(a.apply(W), b.apply(W))
    assert not (torch.equal(a.signs_u, c.signs_u) and torch.equal(a.signs_v, c.signs_v))
    assert not torch.equal(a.apply(W), c.apply(W))


def test_rotation_spreads_an_outlier_column():
    """One column 100x the others: max/rms falls from 43.9 to 3.2 here (a factor 14; 14 to 22 over 15 seed pairs tried);
    assert a factor of at least 7, and a peak under 6 rms, as for Gaussian noise of this size."""
    W = gaussian(128, 384)
    W[:, 17] *= 100
    W_rot = make_rotation(128, 384, seed=0).apply(W)
    before, after = peak_to_rms(W), peak_to_rms(W_rot)
    assert before > 40
    assert after < before / 7
    assert after < 6


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: hadamard(torch.ones(4, dtype=torch.float64)), "float32"),
        (lambda: hadamard(torch.ones(3, 0)), "last dim"),
        (lambda: make_rotation(0, 4, seed=0), "m must be a positive integer"),
        (lambda: make_rotation(4, 4, seed=0).apply(torch.ones(4, 5)), r"shape \(4, 4\)"),
        (lambda: make_rotation(4, 4, seed=0).undo(torch.ones(4, 4).half()), "float32"),
        (lambda: Rotation(torch.ones(3), torch.ones(3, dtype=torch.bool)), "signs_u"),
    ],
)
def test_bad_input_raises_qcore_error(call, match):
    with pytest.raises(QcoreError, match=match):
        call()
