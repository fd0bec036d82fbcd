"""HQQ against min-max RTN (weight cosine and MSE), its per-group guarantee, and its properties."""

import pytest
import torch

from qcore.errors import QcoreError
from qcore.formats.storage import load, save
from qcore.measure.metrics import cosine
from qcore.methods.hqq import HQQConfig, quantize_hqq, shrink_lp
from qcore.methods.quant import dequantize
from qcore.methods.registry import get_method
from qcore.methods.rtn import RTNConfig, quantize_rtn

pytestmark = pytest.mark.usefixtures("one_thread")  # small problems: see conftest.one_thread


def gaussian(out: int, n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(out, n, generator=torch.Generator().manual_seed(seed))


def student_t(out: int, n: int, df: int = 3, seed: int = 0) -> torch.Tensor:
    """Heavy-tailed weights: Z / sqrt(chi2_df / df)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(out, n, generator=gen)
    chi2 = torch.randn(df, out, n, generator=gen).square().sum(0)
    return z / (chi2 / df).sqrt()


@pytest.fixture(scope="module")
def layers():
    return {"gaussian": gaussian(2048, 1024, seed=1), "student-t": student_t(2048, 1024, seed=2)}


def mse(W, W_hat) -> float:
    return float((W.double() - W_hat.double()).square().mean())


@pytest.mark.parametrize("kind", ("gaussian", "student-t"))
def test_2bit_beats_rtn_on_weight_cosine(layers, kind):
    W = layers[kind]
    hqq = cosine(W, dequantize(quantize_hqq(W, HQQConfig(bits=2, group_size=64))))
    rtn = cosine(W, dequantize(quantize_rtn(W, RTNConfig(bits=2, group_size=64))))
    assert hqq > rtn + 1e-3


@pytest.mark.parametrize("kind", ("gaussian", "student-t"))
def test_4bit_beats_or_matches_rtn_on_mse(layers, kind):
    W = layers[kind]
    hqq = mse(W, dequantize(quantize_hqq(W, HQQConfig(bits=4, group_size=64))))
    rtn = mse(W, dequantize(quantize_rtn(W, RTNConfig(bits=4, group_size=64))))
    assert hqq <= rtn


@pytest.mark.parametrize("optimize_scale", (False, True))
@pytest.mark.parametrize("bits", (2, 3, 8))
def test_no_group_is_worse_than_rtn(bits, optimize_scale):
    # each group keeps its best iterate, and the min-max start is one of them
    W = student_t(64, 320, seed=bits)
    qt = quantize_hqq(W, HQQConfig(bits=bits, group_size=64, optimize_scale=optimize_scale))
    rtn = quantize_rtn(W, RTNConfig(bits=bits, group_size=64))

    def group_sse(W_hat):
        return (W.double() - W_hat.double()).square().reshape(64, 5, 64).sum(-1)  # (out, G)

    ours, theirs = group_sse(dequantize(qt)), group_sse(dequantize(rtn))
    assert bool((ours <= theirs * (1 + 1e-5) + 1e-12).all())
    assert float(ours.sum()) < float(theirs.sum())


def test_optimize_scale_moves_scales():
    W = student_t(64, 256, seed=3)
    qt = quantize_hqq(W, HQQConfig(bits=2, group_size=64, optimize_scale=True))
    rtn = quantize_rtn(W, RTNConfig(bits=2, group_size=64))
    assert not torch.equal(qt.scale, rtn.scale)
    assert qt.scale.dtype == torch.float16 and bool((qt.scale.float() > 0).all())


def group_sq_error(W: torch.Tensor, qt) -> torch.Tensor:
    return (W.double() - dequantize(qt).double()).square().reshape(W.shape[0], qt.scale.shape[1], -1).sum(-1)


def test_no_iterations_keeps_the_better_of_min_max_rtn_and_the_unrounded_zero():
    W = gaussian(64, 256, seed=4)
    qt = quantize_hqq(W, HQQConfig(bits=3, group_size=64, iters=0))
    rtn = quantize_rtn(W, RTNConfig(bits=3, group_size=64))
    assert torch.equal(qt.scale, rtn.scale)  # the zero moves, the min-max scale stays
    ours, theirs = group_sq_error(W, qt), group_sq_error(W, rtn)
    assert bool((ours <= theirs * (1 + 1e-6)).all())
    assert float(ours.sum()) < float(theirs.sum())  # the unrounded zero wins for most groups
    assert not torch.equal(qt.zero.float(), qt.zero.float().round())


def test_zero_is_a_real_number_in_float16():
    qt = quantize_hqq(gaussian(64, 256, seed=5), HQQConfig(bits=2, group_size=64))
    assert qt.zero.dtype == torch.float16 and qt.zero.shape == (64, 4)
    z = qt.zero.float()
    assert bool((z != z.round()).any())  # the optimisation moved zeros off the integers


@pytest.mark.parametrize("group_size", (0, 64, 100))  # per-channel, dividing, non-dividing
def test_shapes_and_dtypes(group_size):
    qt = get_method("hqq").quantize(gaussian(16, 200), HQQConfig(bits=4, group_size=group_size))
    G = {0: 1, 64: 4, 100: 2}[group_size]
    assert qt.q.shape == (16, 200) and qt.q.dtype == torch.uint8 and int(qt.q.max()) <= 15
    assert qt.scale.shape == (16, G) and qt.scale.dtype == torch.float16
    assert qt.zero.shape == (16, G) and qt.zero.dtype == torch.float16
    assert (qt.bits, qt.group_size, qt.shape, qt.method) == (4, group_size, (16, 200), "hqq")
    assert qt.config == {
        "bits": 4, "group_size": group_size, "iters": 20, "lp_norm": 0.7, "beta": 10.0, "kappa": 1.01,
        "optimize_scale": False,
        "rotate": False,
    }  # fmt: skip
    W_hat = dequantize(qt)
    assert W_hat.shape == (16, 200) and bool(torch.isfinite(W_hat).all())


def test_padding_does_not_steer_the_last_group():
    # 64 does not divide 100: the short last group must come out as if it stood alone
    W = student_t(32, 100, seed=6)
    whole = quantize_hqq(W, HQQConfig(bits=2, group_size=64))
    alone = quantize_hqq(W[:, 64:].contiguous(), HQQConfig(bits=2, group_size=0))
    assert torch.equal(whole.scale[:, 1:], alone.scale)
    torch.testing.assert_close(whole.zero[:, 1:].float(), alone.zero.float(), rtol=0, atol=2e-3)
    assert float((whole.q[:, 64:] == alone.q).float().mean()) >= 0.99


@pytest.mark.parametrize("bits", (2, 4, 8))
def test_degenerate_rows(bits):
    W = gaussian(6, 128, seed=7)
    W[1] = 0.0
    W[3] = 0.3
    W[4] = -1e-3
    qt = quantize_hqq(W, HQQConfig(bits=bits, group_size=64))
    W_hat = dequantize(qt)
    assert bool(torch.isfinite(W_hat).all()) and bool(torch.isfinite(qt.zero.float()).all())
    assert torch.equal(W_hat[1], torch.zeros(128))
    rtn = dequantize(quantize_rtn(W, RTNConfig(bits=bits, group_size=64)))
    for r in (3, 4):
        assert bool((W_hat[r] == W_hat[r, 0]).all())  # a constant row stays constant
        assert float((W[r] - W_hat[r]).abs().max()) <= float((W[r] - rtn[r]).abs().max()) * (1 + 1e-5)


def test_all_zero_tensor():
    assert torch.equal(dequantize(quantize_hqq(torch.zeros(4, 64), HQQConfig())), torch.zeros(4, 64))


def test_deterministic_and_input_untouched():
    W = student_t(128, 256, seed=8)
    W0 = W.clone()
    a = quantize_hqq(W, HQQConfig(bits=3, group_size=32))
    b = quantize_hqq(W, HQQConfig(bits=3, group_size=32))
    assert torch.equal(a.q, b.q) and torch.equal(a.scale, b.scale) and torch.equal(a.zero, b.zero)
    assert torch.equal(W, W0)


def test_row_blocks_do_not_change_the_result(monkeypatch):
    W = gaussian(300, 128, seed=9)
    small = quantize_hqq(W, HQQConfig(bits=2, group_size=64))
    monkeypatch.setattr("qcore.methods.hqq.BLOCK_ELEMS", 1 << 22)  # one block for everything
    big = quantize_hqq(W, HQQConfig(bits=2, group_size=64))
    assert torch.equal(small.q, big.q) and torch.equal(small.zero, big.zero)


def test_scale_falls_back_to_float32_out_of_fp16_range():
    qt = quantize_hqq(gaussian(16, 128, seed=10) * 1e-9, HQQConfig(bits=8, group_size=32))
    assert qt.scale.dtype == torch.float32 and qt.zero.dtype == torch.float16
    assert cosine(gaussian(16, 128, seed=10), dequantize(qt)) > 0.999


def test_storage_round_trip_is_exact():
    qt = quantize_hqq(student_t(24, 200, seed=11), HQQConfig(bits=3, group_size=64))
    _, data = save(None, {"w": qt})
    back = load(data)["w"]
    assert back.zero.dtype == torch.float16
    assert torch.equal(dequantize(back), dequantize(qt)) and back.config == qt.config


def test_shrink_lp():
    x = torch.tensor([-2.0, -0.01, 0.0, 0.01, 2.0])
    out = shrink_lp(x, beta=10.0, p=0.7)
    assert out[2] == 0 and out[1] == 0 and out[3] == 0  # small errors are absorbed
    expected = 2.0 - 2.0 ** (0.7 - 1) / 10.0
    torch.testing.assert_close(out[[0, 4]], torch.tensor([-expected, expected]))
    torch.testing.assert_close(shrink_lp(x, beta=4.0, p=1.0), torch.sign(x) * torch.relu(x.abs() - 0.25))
    assert torch.equal(x, torch.tensor([-2.0, -0.01, 0.0, 0.01, 2.0]))


def test_refuses_non_finite_weights():
    W = gaussian(4, 64)
    W[0, 0] = float("nan")
    with pytest.raises(QcoreError, match="1 NaN"):
        quantize_hqq(W, HQQConfig())


@pytest.mark.parametrize(
    "options",
    (
        {"bits": 5}, {"group_size": -2}, {"iters": -1}, {"lp_norm": 0.0}, {"lp_norm": 1.5}, {"beta": 0.0},
        {"kappa": 0.9}, {"lp_norm": float("nan")},
    ),
)  # fmt: skip
def test_config_is_validated(options):
    with pytest.raises(QcoreError):
        HQQConfig(**options)


def test_range_overflowing_float32_is_refused():
    W = torch.tensor([[3e38, -3e38, 1.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
    with pytest.raises(QcoreError, match="overflows float32"):
        quantize_hqq(W, HQQConfig(4, 0))


def hqq_package_reference(W: torch.Tensor, bits: int, group_size: int, iters=20, lp=0.7, beta=10.0, kappa=1.01):
    """W_hat of the hqq package's quantizer with round_zero=False, written plainly (float32, axis 1 of (-1, g)).

    Its convention stores the inverse scale: W_q = clamp(round(W * s + z)), W_hat = (W_q - z) / s, with
    s = (2**bits - 1) / (max - min) (capped at 2e4) and z = -min * s, unrounded. optimize_weights_proximal:
    shrink the error W - W_hat with the generalized soft threshold, refit z as the mean of W_q - (W - W_e) * s, grow
    beta by kappa, and stop as soon as the mean absolute error of the whole tensor stops falling (z already updated).
    """
    Wg = W.reshape(-1, group_size).float()  # (groups, g)
    maxq = 2**bits - 1
    lo, hi = Wg.amin(1, keepdim=True), Wg.amax(1, keepdim=True)
    s = (maxq / (hi - lo)).clamp(max=2e4)
    z = -lo * s
    best = float("inf")
    for _ in range(iters):
        W_q = torch.round(Wg * s + z).clamp(0, maxq)
        W_r = (W_q - z) / s
        E = Wg - W_r
        W_e = torch.sign(E) * torch.relu(E.abs() - (E.abs() + 1e-8).pow(lp - 1) / beta)
        z = torch.mean(W_q - (Wg - W_e) * s, dim=1, keepdim=True)
        beta *= kappa
        err = float((Wg - W_r).abs().mean())
        if err < best:
            best = err
        else:
            break
    W_q = torch.round(Wg * s + z).clamp(0, maxq)
    return ((W_q - z) / s).reshape(W.shape)


def test_two_bit_error_is_at_or_below_the_hqq_package_with_unrounded_zero():
    W = gaussian(4096, 1024, seed=12)
    ours = float((W - dequantize(quantize_hqq(W, HQQConfig(bits=2, group_size=64)))).double().square().sum())
    theirs = float((W - hqq_package_reference(W, 2, 64)).double().square().sum())
    assert ours <= theirs * 1.005
