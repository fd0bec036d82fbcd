"""NF4: the code book (published and derived), nearest-code encoding, double quantization, sizes, storage."""

import pytest
import torch

from qcore.errors import QcoreError
from qcore.formats.storage import load, save
from qcore.measure.metrics import cosine
from qcore.methods.nf4 import NF4Config, dynamic_codebook, nearest_code, quantize_nf4
from qcore.methods.quant import dequantize
from qcore.methods.registry import get_method

pytestmark = pytest.mark.usefixtures("one_thread")  # small problems: see conftest.one_thread

NF4_PUBLISHED = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]  # fmt: skip


def gaussian(out: int, n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(out, n, generator=torch.Generator().manual_seed(seed))


def derived_nf4() -> torch.Tensor:
    """NF4 from its definition (QLoRA, bitsandbytes' create_normal_map): quantiles of N(0, 1) at evenly spaced
    probabilities from offset = 0.9677083 down to 1/2, 8 for the positive half and 7 for the negative,
    plus an exact 0, scaled so the largest is 1. float64, ascending. scipy's norm.ppf when installed."""
    offset = 0.9677083
    try:
        from scipy.stats import norm

        icdf = lambda p: torch.from_numpy(norm.ppf(p.numpy()))
    except ImportError:
        icdf = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0).icdf
    positive = icdf(torch.linspace(offset, 0.5, 9, dtype=torch.float64)[:-1])  # (8,)
    negative = -icdf(torch.linspace(offset, 0.5, 8, dtype=torch.float64)[:-1])  # (7,)
    values = torch.cat([positive, torch.zeros(1, dtype=torch.float64), negative]).sort().values  # (16,)
    return values / values.max()


def test_code_values_are_the_published_ones():
    qt = quantize_nf4(gaussian(4, 64), NF4Config())
    assert qt.codebook.dtype == torch.float32
    assert torch.equal(qt.codebook, torch.tensor(NF4_PUBLISHED, dtype=torch.float32))


def test_code_values_follow_from_the_definition():
    torch.testing.assert_close(derived_nf4(), torch.tensor(NF4_PUBLISHED, dtype=torch.float64), rtol=0, atol=1e-6)


def test_every_code_is_used_on_gaussian_data():
    qt = quantize_nf4(gaussian(64, 1024), NF4Config())
    assert torch.equal(torch.bincount(qt.q.flatten().long(), minlength=16) > 0, torch.ones(16, dtype=torch.bool))


@pytest.mark.parametrize("double_quant", (False, True))
def test_w_hat_is_code_times_scale_and_the_code_is_nearest(double_quant):
    W = gaussian(32, 256, seed=1)
    qt = quantize_nf4(W, NF4Config(64, double_quant))
    scale = qt.scale.float().repeat_interleave(64, dim=1)  # (out, in)
    codebook = torch.tensor(NF4_PUBLISHED, dtype=torch.float32)
    assert torch.equal(dequantize(qt), codebook[qt.q.long()] * scale)
    x = W / scale  # (out, in)
    dist = (x.unsqueeze(-1) - codebook).abs()  # (out, in, 16)
    chosen = dist.gather(-1, qt.q.long().unsqueeze(-1)).squeeze(-1)
    assert bool((chosen <= dist.amin(-1) + 1e-6).all())


def test_ties_go_to_the_lower_code():
    codebook = torch.tensor(NF4_PUBLISHED, dtype=torch.float32)
    mid = (codebook[1:] + codebook[:-1]) / 2
    assert torch.equal(nearest_code(mid, codebook), torch.arange(15, dtype=torch.uint8))
    assert nearest_code(torch.tensor([-3.0, 3.0]), codebook).tolist() == [0, 15]


def test_scale_is_the_block_absmax_in_float32():
    W = gaussian(8, 128, seed=2)
    qt = get_method("nf4").quantize(W, NF4Config(64))
    assert qt.scale.dtype == torch.float32 and qt.scale.shape == (8, 2)
    assert torch.equal(qt.scale, W.abs().reshape(8, 2, 64).amax(-1))
    assert torch.equal(qt.zero, torch.zeros((1, 1), dtype=torch.uint8)) and qt.scale_q is None
    assert (qt.bits, qt.group_size, qt.method) == (4, 64, "nf4")
    assert qt.config == {"group_size": 64, "double_quant": False, "bits": 4}


def test_accuracy_on_gaussian_data():
    W = gaussian(256, 1024, seed=3)
    assert cosine(W, dequantize(quantize_nf4(W, NF4Config()))) > 0.99
    assert cosine(W, dequantize(quantize_nf4(W, NF4Config(double_quant=True)))) > 0.99


def test_double_quant_scale_is_its_dequantization():
    W = gaussian(64, 512, seed=4)
    qt = quantize_nf4(W, NF4Config(64, double_quant=True))
    sq = qt.scale_q
    assert sq.shape == (1, 64 * 8) and sq.bits == 8 and sq.group_size == 256 and sq.q.dtype == torch.uint8
    assert qt.scale.dtype == torch.float32
    assert torch.equal(qt.scale, dequantize(sq).reshape(64, 8))
    absmax = W.abs().reshape(64, 8, 64).amax(-1)
    assert float((qt.scale - absmax).abs().max()) <= float(sq.scale.float().max()) / 2 * 1.001  # half an 8-bit step


def bits_of(qt) -> int:
    """Payload plus scales, counted from the tensors: codes, then scales (or the nested scale codes, scales, zeros)."""
    bits = qt.bits * qt.q.numel()
    if qt.scale_q is None:
        return bits + qt.scale.numel() * qt.scale.element_size() * 8
    sq = qt.scale_q
    return (
        bits
        + sq.bits * sq.q.numel()
        + 8 * (sq.scale.numel() * sq.scale.element_size() + sq.zero.numel() * sq.zero.element_size())
    )


def test_bits_per_weight():
    W = gaussian(256, 1024, seed=5)  # 4096 absmax values: 16 blocks of 256
    plain = quantize_nf4(W, NF4Config(64))
    nested = quantize_nf4(W, NF4Config(64, double_quant=True))
    assert bits_of(plain) / W.numel() == 4 + 32 / 64
    # a float32 maximum and a float32 offset per block of 256 absmax values (plus one 256-value code book per tensor)
    assert nested.scale_q.scale.dtype == torch.float32 and nested.scale_q.zero.dtype == torch.float32
    assert bits_of(nested) / W.numel() == pytest.approx(4 + 8 / 64 + (32 + 32) / (64 * 256), abs=1e-12)  # ~4.129


@pytest.mark.parametrize("double_quant", (False, True))
def test_storage_round_trip_is_exact(double_quant):
    qt = quantize_nf4(gaussian(40, 200, seed=6), NF4Config(64, double_quant))
    stats, data = save(None, {"w": qt})
    back = load(data)["w"]
    assert torch.equal(dequantize(back), dequantize(qt))
    assert torch.equal(back.q, qt.q) and torch.equal(back.codebook, qt.codebook) and back.config == qt.config
    assert stats.payload_bytes == 40 * 200 // 2
    assert (back.scale_q is not None) == double_quant


def test_refuses_non_finite_weights():
    W = gaussian(4, 64)
    W[1, 2] = float("inf")
    with pytest.raises(QcoreError, match="1 Inf"):
        quantize_nf4(W, NF4Config())


@pytest.mark.parametrize("double_quant", (False, True))
def test_degenerate_rows(double_quant):
    W = gaussian(6, 128, seed=7)
    W[1] = 0.0
    W[3] = 0.25  # constant rows are reproduced exactly: every weight is +-absmax, code +-1
    W[4] = -3.0
    qt = quantize_nf4(W, NF4Config(64, double_quant))
    W_hat = dequantize(qt)
    assert bool(torch.isfinite(W_hat).all())
    assert torch.equal(W_hat[1], torch.zeros(128))
    if not double_quant:
        assert torch.equal(qt.scale[1], torch.zeros(2))
        assert torch.equal(W_hat[3], W[3]) and torch.equal(W_hat[4], W[4])


def test_all_zero_tensor():
    for dq in (False, True):
        assert torch.equal(dequantize(quantize_nf4(torch.zeros(3, 64), NF4Config(double_quant=dq))), torch.zeros(3, 64))


@pytest.mark.parametrize("group_size", (0, 48, 100, 500))  # per row, non-dividing, longer than the row
def test_block_sizes(group_size):
    W = gaussian(8, 200, seed=8)
    qt = quantize_nf4(W, NF4Config(group_size))
    g = 200 if group_size in (0, 500) else group_size
    G = -(-200 // g)
    assert qt.q.shape == (8, 200) and qt.scale.shape == (8, G) and int(qt.q.max()) <= 15
    absmax = torch.stack([W[:, i : i + g].abs().amax(-1) for i in range(0, 200, g)], dim=1)
    assert torch.equal(qt.scale, absmax)  # the last block is shorter and uses only its own weights
    assert cosine(W, dequantize(qt)) > 0.98


def test_conv_kernel_keeps_its_shape():
    W = torch.randn(8, 4, 3, 3, generator=torch.Generator().manual_seed(0))
    qt = quantize_nf4(W, NF4Config(64))
    assert qt.q.shape == (8, 36) and dequantize(qt).shape == (8, 4, 3, 3)


def test_input_is_not_modified():
    W = gaussian(8, 128)
    W0 = W.clone()
    quantize_nf4(W, NF4Config(64, double_quant=True))
    assert torch.equal(W, W0)


@pytest.mark.parametrize("options", ({"group_size": -1}, {"bits": 3}, {"group_size": 1.5}))
def test_config_is_validated(options):
    with pytest.raises(QcoreError):
        NF4Config(**options)


def test_double_quant_keeps_small_blocks_beside_an_outlier_row():
    """Regression: linear 8-bit absmax codes zeroed every block below 1/510 of the largest (232 of 256 blocks with
    one row 600x the others, relative error 0.95). The dynamic code keeps them: the error stays near plain NF4's."""
    W = gaussian(16, 1024, seed=8)
    W[3] *= 600.0  # 16 rows x 16 blocks of 64 = 256 absmax values, one row of them 600x the rest
    plain, nested = quantize_nf4(W, NF4Config(64)), quantize_nf4(W, NF4Config(64, double_quant=True))
    rel = lambda qt: float((W - dequantize(qt)).norm() / W.norm())  # noqa: E731
    normal = torch.arange(16) != 3
    rel_rows = lambda qt: float((W[normal] - dequantize(qt)[normal]).norm() / W[normal].norm())  # noqa: E731
    assert int((nested.scale == 0).sum()) == 0  # no block is lost
    assert rel(nested) <= 1.2 * rel(plain)
    assert rel_rows(nested) <= 1.2 * rel_rows(plain)  # the small rows too, not only the outlier


def test_dynamic_codes_are_256_sorted_values_with_0_and_1():
    for signed in (False, True):
        book = dynamic_codebook(signed)
        assert book.shape == (256,) and bool((book[1:] > book[:-1]).all())
        assert float(book.max()) == 1.0 and 0.0 in book.tolist()
        assert (float(book.min()) < -0.99) == signed and float(book[book > 0].min()) < 1e-6
