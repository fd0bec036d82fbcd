"""e8p and trellis as methods: 2 bits per weight past the scalar limit, exact storage, degenerate and odd shapes,
and BlockLDLQ feedback that lowers the layer objective."""

import pytest
import torch

from qcore import dequantize, get_method, load, save
from qcore.methods.coded import CodedTensor
from qcore.methods.e8p import GAUSSIAN_SCALE
from qcore.methods.e8p_codebook import gaussian_mse
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
