"""GPTQ against a plain column-by-column reference, against RTN on the layer objective, and its properties."""

import math

import pytest
import torch

from qcore.errors import QcoreError
from qcore.formats.storage import load, save
from qcore.methods.gptq import GPTQConfig, inverse_cholesky, inverse_upper, quantize_gptq
from qcore.methods.quant import choose_qparams, dequantize
from qcore.methods.registry import get_method
from qcore.methods.rtn import RTNConfig, quantize_rtn

pytestmark = pytest.mark.usefixtures("one_thread")
DAMP = (
    GPTQConfig().damp
)  # the one default, shared by the library, the CLI and the dashboard  # small problems: see conftest.one_thread


def correlated_inputs(rows: int, n: int, seed: int = 0) -> torch.Tensor:
    """X = Z A: Gaussian rows mixed by a random matrix, so input features correlate. (rows, n)."""
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=gen) / math.sqrt(n) + torch.eye(n)  # (n, n)
    return torch.randn(rows, n, generator=gen) @ A  # (rows, n)


def hessian(X: torch.Tensor) -> torch.Tensor:
    return (2.0 / X.shape[0]) * (X.T @ X)  # (n, n)


def gaussian(out: int, n: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(out, n, generator=torch.Generator().manual_seed(seed))


def objective(W: torch.Tensor, W_hat: torch.Tensor, X: torch.Tensor) -> float:
    """The layer objective ||W X^T - W_hat X^T||^2, in float64."""
    return float((X.double() @ (W - W_hat).double().T).square().sum())


def gptq_reference(W, H, bits, group_size, sym, damp):
    """Textbook GPTQ in float64: no blocks, no act_order, one column at a time.

    For each column i: q_i = quant(w_i); err = (w_i - w_hat_i) / U[i, i]; W[:, i+1:] -= err (x) U[i, i+1:],
    with U the upper Cholesky factor of (H + damp * mean(diag H) I)^-1. A group's scale and zero are
    chosen when its first column is reached, from the error-updated weights; per-channel ones up-front.
    Returns q (out, in) uint8, scale (out, G), zero (out, G), and x (out, in): each w_i / scale before rounding.
    """
    W, H = W.double().clone(), H.double().clone()
    out, n = W.shape
    maxq = 2**bits - 1
    dead = torch.diagonal(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H += damp * torch.diagonal(H).mean() * torch.eye(n, dtype=torch.float64)
    U = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    g = n if group_size == 0 or group_size >= n else group_size
    G = math.ceil(n / g)
    scale, zero = torch.zeros(out, G, dtype=torch.float64), torch.zeros(out, G, dtype=torch.float64)
    q, x = torch.zeros(out, n, dtype=torch.uint8), torch.zeros(out, n, dtype=torch.float64)
    for i in range(n):
        if i % g == 0:
            s, z = choose_qparams(W[:, i : i + g].float(), bits, sym)
            scale[:, i // g], zero[:, i // g] = s.double(), z.double()
        s, z = scale[:, i // g], zero[:, i // g]
        x[:, i] = W[:, i] / s
        q_i = torch.clamp(torch.round(x[:, i]) + z, 0, maxq)
        q[:, i] = q_i.to(torch.uint8)
        err = (W[:, i] - (q_i - z) * s) / U[i, i]
        W[:, i + 1 :] -= torch.outer(err, U[i, i + 1 :])
    return q, scale, zero, x


def reference_w_hat(q, scale, zero, group_size):
    """(q - zero) * scale with per-group (out, G) scale and zero, in float32. (out, in)."""
    n = q.shape[1]
    g = n if group_size == 0 or group_size >= n else group_size
    return ((q.double() - zero.repeat_interleave(g, 1)[:, :n]) * scale.repeat_interleave(g, 1)[:, :n]).float()


def assert_matches_up_to_ties(qt, ref, group_size):
    """Codes equal the reference's, except where a row first differs at a rounding tie (x within 1e-3 of
    k + 1/2) or at a group whose float16 scale or zero differ (a tie in choosing them). Everything after
    that in the row may differ, since the error feeds forward; those rows must stay rare."""
    q_ref, scale_ref, zero_ref, x_ref = ref
    out, n = q_ref.shape
    g = n if group_size == 0 or group_size >= n else group_size
    differ = qt.q != q_ref
    for r in differ.any(dim=1).nonzero().flatten().tolist():
        c = int(differ[r].nonzero()[0])
        same_params = float(qt.scale[r, c // g]) == float(scale_ref[r, c // g]) and float(
            qt.zero.float().expand_as(qt.scale)[r, c // g]
        ) == float(zero_ref[r, c // g])
        if same_params:
            frac = float(x_ref[r, c] - torch.floor(x_ref[r, c]))
            assert abs(frac - 0.5) < 1e-3, f"row {r} col {c}: x = {float(x_ref[r, c])} is no rounding tie"
    assert float(differ.any(dim=1).float().mean()) <= 0.05
    assert float(differ.float().mean()) <= 0.01


@pytest.mark.parametrize("block_size", (1, 16, 128))
@pytest.mark.parametrize("group_size", (0, 32, 50))  # 50 does not divide 128
@pytest.mark.parametrize("bits", (2, 3, 4, 8))
def test_matches_reference(bits, group_size, block_size):
    W, X = gaussian(64, 128, seed=bits), correlated_inputs(256, 128, seed=group_size)
    H = hessian(X)
    qt = quantize_gptq(W, GPTQConfig(bits, group_size, act_order=False, block_size=block_size), H=H)
    ref = gptq_reference(W, H, bits, group_size, False, DAMP)
    assert_matches_up_to_ties(qt, ref, group_size)
    W_hat_ref = reference_w_hat(*ref[:3], group_size)
    ours, theirs = objective(W, dequantize(qt), X), objective(W, W_hat_ref.float(), X)
    assert abs(ours - theirs) <= 0.01 * theirs


def test_blocks_change_speed_not_result():
    W, X = gaussian(48, 200, seed=5), correlated_inputs(400, 200, seed=5)
    H = hessian(X)
    runs = [quantize_gptq(W, GPTQConfig(3, 32, act_order=True, block_size=b), H=H) for b in (1, 7, 64, 500)]
    for qt in runs[1:]:
        assert float((qt.q == runs[0].q).float().mean()) >= 0.99
        assert torch.equal(qt.scale, runs[0].scale)  # static groups: chosen before the loop


@pytest.mark.parametrize("bits", (2, 4))
def test_act_order_per_channel_is_the_reference_on_permuted_columns(bits):
    W, X = gaussian(64, 128, seed=9), correlated_inputs(256, 128, seed=9) * torch.linspace(0.2, 3.0, 128)
    H = hessian(X)
    perm = torch.argsort(torch.diagonal(H), descending=True, stable=True)
    qt = quantize_gptq(W, GPTQConfig(bits, 0, act_order=True), H=H)
    q_ref, scale_ref, zero_ref, x_ref = gptq_reference(W[:, perm], H[perm][:, perm], bits, 0, False, DAMP)
    inv = torch.argsort(perm)
    assert_matches_up_to_ties(qt, (q_ref[:, inv], scale_ref, zero_ref, x_ref[:, inv]), 0)
    assert not torch.equal(perm, torch.arange(128))  # the order really changed


@pytest.mark.parametrize("sym", (False, True))
@pytest.mark.parametrize("group_size", (0, 32, 50))
def test_static_groups_have_rtn_scales(group_size, sym):
    # act_order with groups (and any per-channel run) chooses scale and zero up-front from the original W
    W, X = gaussian(32, 128, seed=2), correlated_inputs(256, 128, seed=2)
    qt = quantize_gptq(W, GPTQConfig(4, group_size, sym=sym, act_order=True), H=hessian(X))
    rtn = quantize_rtn(W, RTNConfig(4, group_size, sym=sym))
    assert torch.equal(qt.scale, rtn.scale) and torch.equal(qt.zero, rtn.zero)


@pytest.mark.parametrize("group_size", (0, 32))
@pytest.mark.parametrize("act_order", (False, True))
@pytest.mark.parametrize("bits", (2, 3, 4))
def test_beats_rtn_on_the_layer_objective(bits, act_order, group_size):
    W, X = gaussian(64, 128, seed=bits), correlated_inputs(512, 128, seed=3)
    qt = quantize_gptq(W, GPTQConfig(bits, group_size, act_order=act_order), H=hessian(X))
    rtn = quantize_rtn(W, RTNConfig(bits, group_size))
    assert objective(W, dequantize(qt), X) < 0.9 * objective(W, dequantize(rtn), X)


@pytest.mark.parametrize("act_order", (False, True))
@pytest.mark.parametrize("sym", (False, True))
def test_shapes_and_dtypes(sym, act_order):
    W, X = gaussian(24, 200), correlated_inputs(300, 200)
    qt = get_method("gptq").quantize(W, GPTQConfig(3, 64, sym=sym, act_order=act_order), H=hessian(X))
    assert qt.q.shape == (24, 200) and qt.q.dtype == torch.uint8 and int(qt.q.max()) <= 7
    assert qt.scale.shape == (24, 4) and qt.scale.dtype == torch.float16  # 64 does not divide 200
    assert qt.zero.dtype == torch.uint8 and qt.zero.shape == ((1, 1) if sym else (24, 4))
    assert (qt.bits, qt.group_size, qt.shape, qt.method) == (3, 64, (24, 200), "gptq")
    expected = {
        "bits": 3,
        "group_size": 64,
        "sym": sym,
        "act_order": act_order,
        "damp": DAMP,
        "block_size": 128,
        "rotate": False,
    }
    assert qt.config == expected
    W_hat = dequantize(qt)
    assert W_hat.shape == (24, 200) and W_hat.dtype == torch.float32 and bool(torch.isfinite(W_hat).all())


@pytest.mark.parametrize("act_order", (False, True))
@pytest.mark.parametrize("bits", (2, 8))
def test_degenerate_rows(bits, act_order):
    W = gaussian(6, 96)
    W[1] = 0.0
    W[3] = 0.7
    W[4] = -1e-3
    qt = quantize_gptq(W, GPTQConfig(bits, 32, act_order=act_order), H=hessian(correlated_inputs(200, 96)))
    W_hat = dequantize(qt)
    assert bool(torch.isfinite(W_hat).all()) and bool(torch.isfinite(qt.scale.float()).all())
    assert torch.equal(W_hat[1], torch.zeros(96))  # an all-zero row has no error to spread


def test_all_zero_tensor_and_zero_hessian():
    qt = quantize_gptq(torch.zeros(4, 16), GPTQConfig(4, 0), H=torch.zeros(16, 16))  # every column dead
    assert torch.equal(dequantize(qt), torch.zeros(4, 16))


@pytest.mark.parametrize("act_order", (False, True))
def test_dead_columns_are_zeroed(act_order):
    X = correlated_inputs(300, 64)
    X[:, [5, 40]] = 0.0  # inputs that are always 0
    W = gaussian(16, 64)
    qt = quantize_gptq(W, GPTQConfig(4, 16, act_order=act_order), H=hessian(X))
    W_hat = dequantize(qt)
    assert bool(torch.isfinite(W_hat).all())
    assert torch.equal(W_hat[:, [5, 40]], torch.zeros(16, 2))
    rtn = quantize_rtn(W, RTNConfig(4, 16))
    assert objective(W, W_hat, X) < objective(W, dequantize(rtn), X)


def test_singular_hessian_gets_more_damping():
    # H = 4 (all ones) is singular, as when every input is the same feature. 4 + 4e-8 == 4 in float32, so
    # the first Cholesky sees H + lambda I == H exactly and fails (its second pivot is 4 - 2 * 2 = 0);
    # a damping 10 to 1000 times larger succeeds
    H = torch.full((8, 8), 4.0)
    Hd = H.clone()
    torch.diagonal(Hd).add_(1e-8 * 4.0)
    assert torch.equal(Hd, H) and int(torch.linalg.cholesky_ex(Hd).info) != 0
    qt = quantize_gptq(gaussian(8, 8), GPTQConfig(4, 0, damp=1e-8), H=H)
    assert bool(torch.isfinite(dequantize(qt)).all())


def test_hessian_beyond_repair_is_refused():
    with pytest.raises(QcoreError, match="not positive definite"):
        quantize_gptq(gaussian(4, 8), GPTQConfig(), H=-torch.eye(8))


def test_bad_input_is_refused():
    W, H = gaussian(4, 8), torch.eye(8)
    with pytest.raises(QcoreError, match="needs calibration"):
        quantize_gptq(W, GPTQConfig())
    with pytest.raises(QcoreError, match=r"\(8, 8\)"):
        quantize_gptq(W, GPTQConfig(), H=torch.eye(7))
    with pytest.raises(QcoreError, match="NaN"):
        quantize_gptq(W, GPTQConfig(), H=torch.full((8, 8), float("nan")))
    W_nan = W.clone()
    W_nan[2, 3] = float("nan")
    with pytest.raises(QcoreError, match="1 NaN"):
        quantize_gptq(W_nan, GPTQConfig(), H=H)
    with pytest.raises(QcoreError, match="empty"):
        quantize_gptq(torch.zeros(0, 8), GPTQConfig(), H=H)


@pytest.mark.parametrize(
    "options",
    ({"bits": 5}, {"group_size": -1}, {"damp": 0.0}, {"damp": -0.1}, {"damp": float("nan")}, {"block_size": 0}),
)
def test_config_is_validated(options):
    with pytest.raises(QcoreError):
        GPTQConfig(**options)


def test_inputs_are_not_modified():
    W, H = gaussian(8, 64), hessian(correlated_inputs(100, 64))
    H[3, :] = 0.0
    H[:, 3] = 0.0
    W0, H0 = W.clone(), H.clone()
    quantize_gptq(W, GPTQConfig(2, 16), H=H)
    assert torch.equal(W, W0) and torch.equal(H, H0)


def test_conv_kernel_keeps_its_shape():
    W = torch.randn(8, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    qt = quantize_gptq(W, GPTQConfig(8, 0), H=hessian(correlated_inputs(64, 27)))
    assert qt.q.shape == (8, 27) and dequantize(qt).shape == (8, 3, 3, 3)


def test_scale_falls_back_to_float32_out_of_fp16_range():
    W, H = gaussian(16, 64) * 1e7, hessian(correlated_inputs(100, 64))
    qt = quantize_gptq(W, GPTQConfig(8, 16, act_order=False), H=H)
    assert qt.scale.dtype == torch.float32 and bool(torch.isfinite(dequantize(qt)).all())


def test_storage_round_trip():
    qt = quantize_gptq(gaussian(16, 100), GPTQConfig(3, 32), H=hessian(correlated_inputs(128, 100)))
    _, data = save(None, {"w": qt})
    back = load(data)["w"]
    assert torch.equal(dequantize(back), dequantize(qt)) and back.config == qt.config


def test_inverse_cholesky_is_the_papers_factor():
    H = hessian(correlated_inputs(300, 200)).double()
    U = inverse_cholesky(H, 0.01)
    Hd = H + 0.01 * torch.diagonal(H).mean() * torch.eye(200, dtype=torch.float64)
    expected = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(Hd)), upper=True)
    torch.testing.assert_close(U, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n", (1, 5, 256, 257, 520))
def test_inverse_upper(n):
    R = torch.triu(torch.rand(n, n, dtype=torch.float64)) + n * torch.eye(n, dtype=torch.float64)
    torch.testing.assert_close(inverse_upper(R) @ R, torch.eye(n, dtype=torch.float64), rtol=0, atol=1e-12)


def test_range_overflowing_float32_is_refused():
    W = torch.tensor([[3e38, -3e38, 1.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
    with pytest.raises(QcoreError, match="overflows float32"):
        quantize_gptq(W, GPTQConfig(4, 0, act_order=False), H=torch.eye(4))
    with pytest.raises(QcoreError, match="overflows float32"):
        quantize_gptq(W, GPTQConfig(4, 2, act_order=False), H=torch.eye(4))
