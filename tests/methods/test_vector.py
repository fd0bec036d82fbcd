"""e8p and trellis as methods: 2 bits per weight past the scalar limit, exact storage, degenerate and odd shapes,
and BlockLDLQ feedback that lowers the layer objective."""

import pytest
import torch

from qcore import dequantize, get_method, load, save
from qcore.methods.coded import (
    CodedTensor,
    block_ldlq,
    calibrated_codes,
    e8p_coder,
    layer_errors,
    refit_scales,
    start_scales,
)
from qcore.methods.common import store_scales
from qcore.methods.e8p import GAUSSIAN_SCALE
from qcore.methods.e8p_codebook import e8p_decode, gaussian_mse
from qcore.methods.trellis import sequence_length

pytestmark = pytest.mark.usefixtures("one_thread")
SCALAR_LIMIT_D = 0.1175  # Lloyd-Max at 2 bits: no scalar quantizer does better on Gaussian weights


def gaussian(out: int, n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(out, n, generator=torch.Generator().manual_seed(seed))


def quantize(method: str, W: torch.Tensor, H=None, **options) -> CodedTensor:
    m = get_method(method)
    return m.quantize(W, m.make_config(**options), H=H)


def distortion(W: torch.Tensor, W_hat: torch.Tensor) -> float:
    return float((W - W_hat).double().square().sum() / W.double().square().sum())


@pytest.mark.parametrize(("method", "options"), [("e8p", {}), ("trellis", {"L": 8})])
def test_two_bits_per_weight_beat_the_best_scalar_quantizer(method, options):
    W = gaussian(256, 1024, seed=1)
    qt = quantize(method, W, **options)
    assert qt.bits == 2.0 and qt.payload_bits() == 2 * W.numel()
    assert distortion(W, dequantize(qt)) < 0.8 * SCALAR_LIMIT_D  # e8p about 0.09, trellis L=8 about 0.086


def test_e8p_error_is_quip_sharps_on_gaussian_weights():
    D = distortion(W := gaussian(512, 1024, seed=2), dequantize(quantize("e8p", W)))
    assert D == pytest.approx(0.089, rel=0.05)


def test_the_start_scale_is_the_codebooks_best_gaussian_scale():
    _, s = gaussian_mse(1 << 16)
    assert s == pytest.approx(GAUSSIAN_SCALE, abs=0.02)


@pytest.mark.parametrize(("method", "options"), [("e8p", {}), ("e8p", {"group_size": 64}), ("trellis", {"L": 6})])
def test_the_artifact_round_trip_is_bit_exact_and_reproducible(method, options):
    W = gaussian(33, 200, seed=3)
    qt = quantize(method, W, **options)
    stats, data = save(None, {"w": qt})
    back = load(data)["w"]
    assert isinstance(back, CodedTensor) and torch.equal(dequantize(back), dequantize(qt))
    assert save(None, {"w": quantize(method, W, **options)})[1] == data  # the same weights give the same bytes
    assert stats.payload_bytes == -(-qt.payload_bits() // 8)


@pytest.mark.parametrize("method", ("e8p", "trellis"))
@pytest.mark.parametrize("shape", [(1, 384), (384, 1), (7, 10), (48, 1536), (5, 3, 3, 3)])
def test_odd_shapes_work(method, shape):
    W = torch.randn(*shape, generator=torch.Generator().manual_seed(4))
    W_hat = dequantize(quantize(method, W, **({"L": 6} if method == "trellis" else {})))
    assert W_hat.shape == W.shape and bool(torch.isfinite(W_hat).all())
    assert torch.nn.functional.cosine_similarity(W.reshape(1, -1), W_hat.reshape(1, -1)).item() > 0.8


@pytest.mark.parametrize("method", ("e8p", "trellis"))
def test_zero_constant_and_huge_rows_give_no_nan(method):
    W = gaussian(6, 128, seed=5)
    W[1], W[2], W[3] = 0.0, 0.25, 1e30
    options = {"L": 6} if method == "trellis" else {}
    W_hat = dequantize(quantize(method, W, **options))
    assert bool(torch.isfinite(W_hat).all())
    assert torch.equal(W_hat[1], torch.zeros(128))  # an all-zero row has scale 0: exactly 0
    assert float((W_hat[3] / 1e30 - 1).abs().mean()) < 0.5  # huge rows keep float32 scales and their size
    assert torch.equal(dequantize(quantize(method, torch.zeros(4, 64), **options)), torch.zeros(4, 64))


def test_trellis_sequences_divide_the_row_where_they_can():
    assert [sequence_length(n) for n in (4096, 1536, 384, 1024, 11008, 10, 3000)] == [512, 512, 384, 512, 344, 10, 500]
    assert sequence_length(1031) == 256  # a prime above 512: padded to sequences of 256


@pytest.mark.parametrize(("method", "options"), [("e8p", {}), ("trellis", {"L": 6})])
def test_block_ldlq_lowers_the_layer_objective(method, options):
    """With the layer Hessian (correlated inputs), feedback over blocks beats coding each block on its own."""
    W, gen = gaussian(64, 1024, seed=6), torch.Generator().manual_seed(7)  # rows of 1024: two trellis sequences
    X = torch.randn(2048, 1024, generator=gen) @ (torch.randn(1024, 1024, generator=gen) / 16 + torch.eye(1024))
    H = 2 * X.T @ X / X.shape[0]
    objective = lambda W_hat: float(((W - W_hat) @ X.T).square().sum())  # noqa: E731
    plain, fed = quantize(method, W, H=H, **options), quantize(method, W, H=H, calibrate=True, **options)
    assert objective(dequantize(fed)) < 0.85 * objective(dequantize(plain))  # measured: e8p 0.52x, trellis 0.75x


def test_group_scales_refit_solves_each_rows_normal_equations():
    """refit_scales against a plain per-row least squares over the layer error, groups coupled through H."""
    gen = torch.Generator().manual_seed(11)
    out, n, G = 5, 48, 3
    W, x_hat = torch.randn(out, n, generator=gen), torch.randn(out, n, generator=gen)
    X = torch.randn(200, n, generator=gen)
    H = 2 * X.T @ X / X.shape[0]
    x_hat[1, 16:32] = 0.0  # a dead group keeps its old scale
    old = torch.rand(out, G, generator=gen) + 0.5
    old[3, 2] = 0.0  # so does an all-zero one
    fitted = refit_scales(W, x_hat, H, old)
    for r in range(out):
        live = [g for g in range(G) if x_hat[r, 16 * g : 16 * g + 16].abs().sum() > 0 and old[r, g] > 0]
        B = torch.zeros(len(live), n, dtype=torch.float64)  # row i: group live[i]'s part of x_hat
        for i, g in enumerate(live):
            B[i, 16 * g : 16 * g + 16] = x_hat[r, 16 * g : 16 * g + 16].double()
        Xd = X.double() * (2 / X.shape[0]) ** 0.5  # H = Xd^T Xd
        s = torch.linalg.lstsq((B @ Xd.T).T, (W[r].double() @ Xd.T).unsqueeze(1)).solution[:, 0]
        expect = old[r].clone()
        expect[live] = s.float()
        torch.testing.assert_close(fitted[r], expect, rtol=1e-4, atol=1e-6)


def test_calibrated_passes_never_leave_a_row_worse_than_the_first():
    """Each row keeps the BlockLDLQ pass with its lowest layer error, so no row loses to pass one."""
    W, gen = gaussian(32, 256, seed=8), torch.Generator().manual_seed(9)
    X = torch.randn(1024, 256, generator=gen) @ (torch.randn(256, 256, generator=gen) / 8 + torch.eye(256))
    H = 2 * X.T @ X / X.shape[0]
    scale = start_scales(W.reshape(32, 4, 64), GAUSSIAN_SCALE)  # (32, 4): groups of 64
    first = store_scales(scale, allow_zero=True).float()
    _, _, x1 = block_ldlq(W, H, e8p_coder, first, 8, 0.1)
    one = layer_errors(W, x1, store_scales(refit_scales(W, x1, H, first), allow_zero=True).float(), H)
    codes, _, s = calibrated_codes(W, H, e8p_coder, scale, 8, 0.1)
    x_hat = e8p_decode(codes).reshape(32, 256)
    best = layer_errors(W, x_hat, s, H)
    assert bool((best <= one * (1 + 1e-9)).all())
    assert float(best.sum()) < float(one.sum())


def test_calibrated_e8p_takes_group_scales():
    W, gen = gaussian(16, 256, seed=10), torch.Generator().manual_seed(12)
    X = torch.randn(512, 256, generator=gen)
    H = 2 * X.T @ X / X.shape[0]
    q = quantize("e8p", W, H=H, calibrate=True, group_size=64)
    assert q.scale.shape == (16, 4) and q.group_size == 64
    assert distortion(W, dequantize(q)) < SCALAR_LIMIT_D
