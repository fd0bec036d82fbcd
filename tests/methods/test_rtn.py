"""RTN against a plain reference (exactly), and the properties every RTN result must have."""

import math

import pytest
import torch

from qcore.formats.storage import load, save
from qcore.measure.metrics import cosine
from qcore.methods.quant import dequantize
from qcore.methods.registry import get_method
from qcore.methods.rotation import Rotation
from qcore.methods.rtn import RTNConfig, quantize_rtn

BITS = (2, 3, 4, 8)


def gaussian(out: int, n: int, seed: int = 0, std: float = 1.0) -> torch.Tensor:
    return torch.randn(out, n, generator=torch.Generator().manual_seed(seed)) * std


def reference_rtn(W: torch.Tensor, bits: int, group_size: int, sym: bool):
    """Plain RTN: zero-pad to (out, G, g); asym: min/max (with 0) over 2**bits - 1 steps; sym: the signed extreme of
    largest magnitude over -2**(bits-1) steps (llama.cpp's Q4_0 rule); float16 scale. Returns q, scale, zero."""
    out, n = W.shape
    g = n if group_size == 0 or group_size >= n else group_size
    G = math.ceil(n / g)
    padded = torch.zeros(out, G * g)
    padded[:, :n] = W
    Wg = padded.reshape(out, G, g)  # (out, G, g)
    maxq = 2**bits - 1
    if sym:
        lo, hi = Wg.amin(dim=-1), Wg.amax(dim=-1)
        extreme = torch.where(hi.abs() >= lo.abs(), hi, lo)
        scale = extreme / -(2 ** (bits - 1))  # (out, G), signed
    else:
        lo = torch.minimum(Wg.amin(dim=-1), torch.tensor(0.0))
        hi = torch.maximum(Wg.amax(dim=-1), torch.tensor(0.0))
        scale = (hi - lo) / maxq  # (out, G)
    scale = torch.where(scale != 0, scale, torch.ones_like(scale)).half().float()
    if sym:
        zero = torch.full_like(scale, 2 ** (bits - 1))
    else:
        zero = torch.clamp(torch.round(-lo / scale), 0, maxq)
    q = torch.clamp(torch.round(Wg / scale[..., None]) + zero[..., None], 0, maxq)  # (out, G, g)
    q = q.to(torch.uint8).reshape(out, G * g)[:, :n]
    return q, scale, zero.to(torch.uint8)


def group_scale(qt, n: int) -> torch.Tensor:
    """Each weight's scale, (out, in), from the per-group (out, G) scales."""
    g = qt.q.shape[1] if qt.scale.shape[1] == 1 else qt.group_size
    return qt.scale.float().repeat_interleave(g, dim=1)[:, :n]


def group_zero(qt, n: int) -> torch.Tensor:
    zero = qt.zero.float().expand(qt.scale.shape)
    g = qt.q.shape[1] if qt.scale.shape[1] == 1 else qt.group_size
    return zero.repeat_interleave(g, dim=1)[:, :n]


@pytest.mark.parametrize("sym", (False, True))
@pytest.mark.parametrize("group_size", (0, 32, 64, 96))  # 96 does not divide 256
@pytest.mark.parametrize("bits", BITS)
def test_matches_reference_exactly(bits, group_size, sym):
    W = gaussian(24, 256, seed=bits * 1000 + group_size)
    qt = quantize_rtn(W, RTNConfig(bits=bits, group_size=group_size, sym=sym))
    q, scale, zero = reference_rtn(W, bits, group_size, sym)
    assert qt.scale.dtype == torch.float16
    assert torch.equal(qt.q, q)
    assert torch.equal(qt.scale.float(), scale)
    assert torch.equal(qt.zero, zero[:1, :1] if sym else zero)


@pytest.mark.parametrize("sym", (False, True))
@pytest.mark.parametrize("bits", BITS)
def test_matches_reference_on_odd_row_length(bits, sym):
    W = gaussian(7, 100, seed=bits)
    qt = quantize_rtn(W, RTNConfig(bits=bits, group_size=32, sym=sym))
    q, scale, zero = reference_rtn(W, bits, 32, sym)
    assert torch.equal(qt.q, q)
    assert torch.equal(qt.scale.float(), scale)
    assert torch.equal(qt.zero, zero[:1, :1] if sym else zero)


@pytest.mark.parametrize("sym", (False, True))
@pytest.mark.parametrize("group_size", (0, 64))
@pytest.mark.parametrize("bits", BITS)
def test_error_at_most_half_a_step_inside_the_range(bits, group_size, sym):
    W = gaussian(32, 256, seed=7)
    qt = quantize_rtn(W, RTNConfig(bits=bits, group_size=group_size, sym=sym))
    E = (W - dequantize(qt)).abs()
    scale, zero = group_scale(qt, 256), group_zero(qt, 256)
    # the clipping range: values that round to a code in [0, maxq] without being clamped (a symmetric scale may be
    # negative, which swaps the ends)
    ends = torch.stack([(0 - zero - 0.5) * scale, (2**bits - 1 - zero + 0.5) * scale])
    inside = (W >= ends.amin(0)) & (W <= ends.amax(0))
    assert inside.float().mean() > (0.97 if sym else 0.99)  # sym clips the side opposite its extreme (Q4_0)
    bound = scale.abs() / 2 * (1 + 1e-5) + 1e-6 * W.abs()
    assert bool((E[inside] <= bound[inside]).all())


@pytest.mark.parametrize("sym", (False, True))
@pytest.mark.parametrize("bits", BITS)
def test_error_below_one_step_everywhere(bits, sym):
    # at a group's extremes the float16-rounded scale may clamp a value a little past half a step
    W = gaussian(256, 512, seed=1)
    qt = quantize_rtn(W, RTNConfig(bits=bits, sym=sym))
    assert bool(((W - dequantize(qt)).abs() < qt.scale.float().abs()).all())


def test_error_falls_as_bits_rise():
    W = gaussian(64, 512, seed=3)
    mse = [float((W - dequantize(quantize_rtn(W, RTNConfig(bits=b)))).square().mean()) for b in BITS]
    assert mse[0] > mse[1] > mse[2] > mse[3] > 0


@pytest.mark.parametrize("sym", (False, True))
@pytest.mark.parametrize("group_size", (0, 32))
@pytest.mark.parametrize("bits", (2, 3, 4))
def test_clip_never_raises_group_mse(bits, group_size, sym):
    W = gaussian(32, 128, seed=11)

    def group_mse(clip: bool) -> torch.Tensor:
        qt = quantize_rtn(W, RTNConfig(bits=bits, group_size=group_size, sym=sym, clip=clip))
        E = (W.double() - dequantize(qt).double()).square()
        return E.reshape(32, qt.scale.shape[1], -1).mean(-1)  # (out, G)

    plain, clipped = group_mse(False), group_mse(True)
    assert bool((clipped <= plain * (1 + 1e-6) + 1e-12).all())
    assert float(clipped.sum()) < float(plain.sum())


@pytest.mark.parametrize("sym", (False, True))
def test_shapes_and_dtypes(sym):
    qt = quantize_rtn(gaussian(16, 80), RTNConfig(bits=4, group_size=32, sym=sym))
    assert qt.q.shape == (16, 80) and qt.q.dtype == torch.uint8
    assert qt.scale.shape == (16, 3) and qt.scale.dtype == torch.float16
    assert qt.zero.dtype == torch.uint8
    assert qt.zero.shape == ((1, 1) if sym else (16, 3))
    assert qt.shape == (16, 80)
    assert int(qt.q.max()) <= 15
    W_hat = dequantize(qt)
    assert W_hat.shape == (16, 80) and W_hat.dtype == torch.float32


def test_conv_kernel_keeps_its_shape():
    W = torch.randn(8, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    qt = quantize_rtn(W, RTNConfig(bits=8))
    assert qt.q.shape == (8, 27)
    W_hat = dequantize(qt)
    assert W_hat.shape == (8, 3, 3, 3)
    assert cosine(W, W_hat) > 0.999


def test_input_is_not_modified():
    W = gaussian(8, 64)
    before = W.clone()
    quantize_rtn(W, RTNConfig(bits=2, group_size=16, clip=True))
    assert torch.equal(W, before)


@pytest.mark.parametrize("sym", (False, True))
@pytest.mark.parametrize("bits", BITS)
def test_all_zero_rows_dequantize_to_exact_zeros(bits, sym):
    W = gaussian(6, 40)
    W[1] = 0.0
    W[4] = 0.0
    W_hat = dequantize(quantize_rtn(W, RTNConfig(bits=bits, group_size=16, sym=sym)))
    assert bool(torch.isfinite(W_hat).all())
    assert torch.equal(W_hat[1], torch.zeros(40)) and torch.equal(W_hat[4], torch.zeros(40))


@pytest.mark.parametrize("sym", (False, True))
@pytest.mark.parametrize("bits", BITS)
def test_all_zero_tensor(bits, sym):
    qt = quantize_rtn(torch.zeros(4, 12), RTNConfig(bits=bits, sym=sym))
    assert torch.equal(qt.scale.float(), torch.ones(4, 1))
    assert torch.equal(dequantize(qt), torch.zeros(4, 12))


@pytest.mark.parametrize("sym", (False, True))
@pytest.mark.parametrize("bits", BITS)
def test_constant_rows_stay_within_half_a_step(bits, sym):
    W = torch.tensor([0.3, -0.7, 5.0, -1e-3, 0.0]).repeat_interleave(24).reshape(5, 24)
    qt = quantize_rtn(W, RTNConfig(bits=bits, sym=sym))
    W_hat = dequantize(qt)
    assert bool(torch.isfinite(qt.scale.float()).all()) and bool(torch.isfinite(W_hat).all())
    E = (W - W_hat).abs()
    assert bool((E <= qt.scale.float().abs() / 2).all())
    assert bool((W_hat == W_hat[:, :1]).all())  # a constant row stays constant
    assert torch.equal(torch.sign(W_hat), torch.sign(W))


@pytest.mark.parametrize("bits", BITS)
def test_constant_row_with_exact_scale_reproduces_exactly(bits):
    # asym: the range is [0, c] or [c, 0]; c = maxq / 16 makes the scale 1/16, exact in float16
    c = (2**bits - 1) / 16
    W = torch.tensor([[c] * 10, [-c] * 10])
    assert torch.equal(dequantize(quantize_rtn(W, RTNConfig(bits=bits))), W)


@pytest.mark.parametrize("sym", (False, True))
@pytest.mark.parametrize("magnitude", (1e7, 1e-9))
def test_scale_falls_back_to_float32_out_of_fp16_range(magnitude, sym):
    W = gaussian(16, 128, seed=5, std=magnitude)
    qt = quantize_rtn(W, RTNConfig(bits=8, group_size=32, sym=sym))
    assert qt.scale.dtype == torch.float32
    W_hat = dequantize(qt)
    assert bool(torch.isfinite(W_hat).all())
    assert cosine(W, W_hat) > 0.99


def test_large_weights_at_low_bits_fall_back_too():
    # 1e6 weights fit a float16 scale at 8 bits (range / 255 < 65504) but not at 4 bits
    W = gaussian(8, 64, seed=2, std=1e6)
    assert quantize_rtn(W, RTNConfig(bits=8)).scale.dtype == torch.float16
    qt = quantize_rtn(W, RTNConfig(bits=4))
    assert qt.scale.dtype == torch.float32
    assert cosine(W, dequantize(qt)) > 0.98


@pytest.mark.parametrize("sym", (False, True))
def test_non_dividing_group_pads_last_group(sym):
    W = gaussian(5, 100, seed=9)
    qt = quantize_rtn(W, RTNConfig(bits=4, group_size=32, sym=sym))
    assert qt.scale.shape == (5, math.ceil(100 / 32))
    # the last group is built from columns 96..99 alone
    tail = quantize_rtn(W[:, 96:].contiguous(), RTNConfig(bits=4, sym=sym))
    assert torch.equal(qt.scale[:, -1:], tail.scale)
    assert torch.equal(qt.q[:, 96:], tail.q)
    W_hat = dequantize(qt)
    assert W_hat.shape == (5, 100)
    assert torch.equal(W_hat[:, 96:], dequantize(tail))
    # half a step inside the grid; a symmetric grid may clip the side opposite its extreme by up to one step
    steps = 1.0001 if sym else 0.5001
    assert bool(((W - W_hat).abs() <= group_scale(qt, 100).abs() * steps + 1e-6).all())


@pytest.mark.parametrize("bits", BITS)
def test_symmetric_grids_use_all_their_levels_and_hit_the_extreme(bits):
    """Q4_0's rule: 2**bits levels, the largest-magnitude value exactly on one (absmax / (2**(bits-1) - 1) wastes one)."""
    W = gaussian(64, 256, seed=bits)
    qt = quantize_rtn(W, RTNConfig(bits=bits, group_size=32, sym=True))
    assert int(qt.q.min()) == 0 and int(qt.q.max()) == 2**bits - 1
    Wg, Hg = W.reshape(64, 8, 32), dequantize(qt).reshape(64, 8, 32)
    extreme = Wg.abs().argmax(-1, keepdim=True)  # (64, 8, 1)
    err = (Wg.gather(-1, extreme) - Hg.gather(-1, extreme)).abs()
    assert bool((err <= 1e-3 * Wg.abs().amax(-1, keepdim=True)).all())  # only the float16 rounding of the scale


def test_symmetric_4_bit_beats_the_absmax_over_7_grid_by_a_fifth():
    W = gaussian(1024, 1024, seed=4)
    qt = quantize_rtn(W, RTNConfig(bits=4, group_size=32, sym=True))
    Wg = W.reshape(1024, 32, 32)
    scale = (Wg.abs().amax(-1, keepdim=True) / 7).half().float()
    old = (torch.clamp(torch.round(Wg / scale), -8, 7) * scale).reshape(1024, 1024)  # absmax / 7, 15 levels used
    new_mse, old_mse = float((W - dequantize(qt)).square().mean()), float((W - old).square().mean())
    assert new_mse < 0.85 * old_mse


@pytest.mark.parametrize("method", ("rtn", "hqq", "gptq"))
def test_rotate_quantizes_in_the_incoherent_basis_and_undoes_it(method):
    """With rotate, the codes are those of the rotated weights, and dequantization undoes the rotation exactly
    (the stored signs are all it takes: the artifact round trip is bit-exact)."""
    m = get_method(method)
    W = gaussian(48, 96, seed=2)
    W[:, 5] *= 40.0  # an outlier column: what incoherence processing is for
    H = torch.eye(96) if m.needs_calibration else None
    plain, rot = m.quantize(W, m.make_config(bits=3), H=H), m.quantize(W, m.make_config(bits=3, rotate=True), H=H)
    assert rot.rotation is not None and plain.rotation is None
    same = m.quantize(rot.rotation.apply(W), m.make_config(bits=3), H=H if H is None else rot_hessian(rot, H))
    assert torch.equal(same.q, rot.q)  # the codes of the rotated weights
    assert torch.allclose(rot.rotation.undo(same.dequantize()), dequantize(rot), atol=1e-5)
    back = load(save(None, {"w": rot})[1])["w"]
    assert torch.equal(dequantize(back), dequantize(rot))
    assert cosine(W, dequantize(rot)) > cosine(W, dequantize(plain))  # the outlier no longer stretches every row


def rot_hessian(qt, H):
    return Rotation(qt.rotation.signs_v, qt.rotation.signs_v).apply(H)
