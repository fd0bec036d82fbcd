"""SEQ's half-integer levels and the mixed-precision allocator."""

import math

import pytest
import torch

from qcore import QcoreError, dequantize, get_method, load, load_preset, run
from qcore.formats.storage import count_bytes
from qcore.measure.metrics import cosine
from qcore.methods.contract import ModelJob
from qcore.methods.mixed import MixedConfig, quantize_mixed
from qcore.methods.qat import fake_quant_seq, qat_seq
from qcore.methods.quant import MixedTensor
from qcore.methods.seq import SEQConfig, quantize_seq
from qcore.models.model import Model
from qcore.models.presets import mlp_forward


def gaussian(out=256, n=512, seed=0):
    return torch.randn(out, n, generator=torch.Generator().manual_seed(seed))


def test_seq_levels_are_exactly_the_half_integers_times_scale():
    W = gaussian(4, 256)
    qt = quantize_seq(W, SEQConfig(bits=2, group_size=0))
    assert qt.zero.item() == 1.5 and qt.zero.dtype == torch.float16
    W_hat = dequantize(qt)
    for r in range(4):
        levels = torch.unique(W_hat[r] / qt.scale[r, 0].float())
        assert levels.tolist() == [-1.5, -0.5, 0.5, 1.5]


def seq_reference(w: torch.Tensor, scale: float, bits: int = 2) -> torch.Tensor:
    """Plain nearest-level search over the explicit half-integer grid."""
    half = 2 ** (bits - 1)
    grid = torch.tensor([k + 0.5 for k in range(-half, half)]) * scale
    return grid[(w[:, None] - grid[None, :]).abs().argmin(1)]


@pytest.mark.parametrize("bits", (2, 3, 4))
def test_seq_codes_are_the_nearest_level(bits):
    W = gaussian(8, 128, seed=bits)
    qt = quantize_seq(W, SEQConfig(bits=bits, group_size=0))
    W_hat = dequantize(qt)
    for r in range(8):
        ref = seq_reference(W[r], qt.scale[r, 0].float().item(), bits)
        assert torch.allclose(W_hat[r], ref, atol=0, rtol=1e-6)


def test_seq_beats_minmax_int2_on_gaussian_rows():
    W = gaussian(512, 1024)
    seq = cosine(W, dequantize(quantize_seq(W, SEQConfig(group_size=0))))
    m = get_method("int2")
    int2 = cosine(W, dequantize(m.quantize(W, m.make_config())))
    assert seq > int2 + 0.05
    assert seq == pytest.approx(0.939, abs=0.005)  # the best 4-level scalar quantizer of a Gaussian


@pytest.mark.parametrize("group_size", (0, 64, 100))
def test_seq_shapes_dtypes_and_degenerate_rows(group_size):
    W = gaussian(6, 256)
    W[0] = 0
    W[1] = 0.3
    qt = quantize_seq(W, SEQConfig(group_size=group_size))
    assert qt.q.dtype == torch.uint8 and qt.q.shape == (6, 256) and int(qt.q.max()) <= 3
    assert qt.scale.dtype == torch.float16 and qt.scale.shape[1] == (
        1 if group_size == 0 else math.ceil(256 / group_size)
    )
    W_hat = dequantize(qt)
    assert bool(torch.isfinite(W_hat).all())
    assert W_hat[1].unique().numel() == 1  # a constant row stays constant


def test_seq_round_trips_through_the_artifact():
    model = load_preset("small")
    res = run(model, "seq")
    back = load(res.artifact)
    for name, item in res.quantized.items():
        if name.endswith("weight"):
            assert torch.equal(dequantize(back[name]), dequantize(item))


def test_seq_config_is_validated():
    with pytest.raises(QcoreError, match="seq bits must be one of 2, 3, 4; got 8"):
        SEQConfig(bits=8)


@pytest.mark.parametrize(("target", "floor"), [(2.5, 0.95), (2.25, 0.94)])
def test_mixed_meets_the_budget_on_large_with_everything_counted(target, floor):
    rec = run(load_preset("large"), "mixed", {"target_bpw": target}).record
    assert rec["bpw"] <= target  # file bytes x 8 / all params: scales, widths, biases, container included
    assert rec["weight_cosine"] >= floor


def test_mixed_gives_more_bits_to_cheaper_rows():
    rec = run(load_preset("large"), "mixed", {"target_bpw": 2.5}).record
    bits = {la["name"]: la["bits"] for la in rec["layers"]}
    # rows of fc1 are 256 wide and cost a quarter of fc3's 1024 for the same error removed
    assert bits["fc1.weight"] > bits["fc2.weight"] > bits["fc3.weight"] >= 2


def test_mixed_round_trips_and_cosine_rises_with_budget(tmp_path):
    model = load_preset("medium")
    cos = []
    for target in (2.6, 3.0, 3.6):
        res = run(model, "mixed", {"target_bpw": target}, out=tmp_path / f"m{target}.parquet")
        back = load(tmp_path / f"m{target}.parquet")
        mixed = back["fc2.weight"]
        assert isinstance(mixed, MixedTensor)
        assert torch.equal(dequantize(mixed), dequantize(res.quantized["fc2.weight"]))
        cos.append(res.record["weight_cosine"])
        assert res.record["bpw"] <= target
    assert cos[0] < cos[1] < cos[2]


def test_mixed_refuses_an_unreachable_budget():
    with pytest.raises(QcoreError, match="below the smallest file this model allows"):
        run(load_preset("medium"), "mixed", {"target_bpw": 1.5})


def test_mixed_on_one_tensor_meets_its_own_budget():
    W = gaussian(128, 256)
    mt = quantize_mixed(W, MixedConfig(target_bpw=2.5))
    payload = mt.payload_bits()
    assert payload + 128 * 24 <= 2.5 * W.numel()
    assert set(mt.parts) <= {2, 3, 4} and mt.row_bits.shape == (128,)


def test_mixed_config_is_validated():
    with pytest.raises(QcoreError, match="min_bits 4 exceeds max_bits 2"):
        MixedConfig(min_bits=4, max_bits=2)
    with pytest.raises(QcoreError, match="target_bpw must be positive"):
        MixedConfig(target_bpw=0)


def trainable_mlp(seed=0):
    """A small MLP whose training loss is matching its own FP32 outputs (distillation), for QAT."""
    gen = torch.Generator().manual_seed(seed)
    tensors = {
        "fc1.weight": torch.randn(64, 32, generator=gen) / 32**0.5,
        "fc1.bias": torch.zeros(64),
        "fc2.weight": torch.randn(16, 64, generator=gen) / 8,
        "fc2.bias": torch.zeros(16),
    }
    X = torch.randn(512, 32, generator=gen)
    X_eval = torch.randn(256, 32, generator=gen)
    with torch.no_grad():
        Y = mlp_forward(tensors, X)

    def loss(t, step):
        i = (step * 64) % 512
        return (mlp_forward(t, X[i : i + 64]) - Y[i : i + 64]).square().mean()

    def task(ref, t):
        return {"mse": float((mlp_forward(t, X_eval) - mlp_forward(ref, X_eval)).square().mean())}

    return Model("trainable", tensors, "", mlp_forward, X_eval, X, task=task, loss=loss)


def test_qat_lowers_the_task_error_of_seq_ptq():
    model = trainable_mlp()
    ptq = run(model, "seq", {"qat_steps": 0, "group_size": 32}).record
    qat = run(model, "seq", {"qat_steps": 150, "qat_lr": 1e-3, "group_size": 32}).record
    assert qat["task"]["mse"] < 0.8 * ptq["task"]["mse"]
    assert qat["layers"][0]["bits"] == 2


def test_qat_with_zero_steps_is_exactly_ptq():
    model = trainable_mlp()
    chosen = {k: v for k, v in model.tensors.items() if v.dim() == 2}
    kept = {k: v for k, v in model.tensors.items() if v.dim() < 2}
    cfg = SEQConfig(qat_steps=0)
    out = qat_seq(ModelJob(model, chosen, kept, count_bytes), cfg)
    for name, W in chosen.items():
        assert torch.equal(out[name].q, quantize_seq(W, cfg).q)


def test_fake_quant_matches_the_stored_quantizer():
    W = gaussian(16, 96)
    qt = quantize_seq(W, SEQConfig(group_size=32))
    assert torch.equal(fake_quant_seq(W, qt.scale.float(), 2, 32), dequantize(qt))


@pytest.mark.parametrize("method", ("seq", "mixed"))
def test_an_all_zero_group_dequantizes_to_zero(method):
    """Regression: half-integer levels have no 0, so a zero group came back as +0.5 scale (0.1 at 2 bits)."""
    m = get_method(method)
    options = {"qat_steps": 0} if method == "seq" else {}
    assert torch.equal(dequantize(m.quantize(torch.zeros(4, 64), m.make_config(**options))), torch.zeros(4, 64))
    W = gaussian(4, 128)
    W[1], W[2, :64] = 0.0, 0.0  # a zero row, and a zero group in a live row
    W_hat = dequantize(m.quantize(W, m.make_config(**options)))
    assert torch.equal(W_hat[1], torch.zeros(128))
    if method == "seq":  # per-group scales: the zero group is exact too (mixed has one scale per row)
        assert torch.equal(W_hat[2, :64], torch.zeros(64))


@pytest.mark.parametrize("method", ("seq", "mixed"))
@pytest.mark.parametrize("std", (1e-6, 1e6))
def test_scales_outside_float16_fall_back_to_float32(method, std):
    """Regression: scales were clamped to float16's range, so 1e-6 weights came back as 3e-5 and 1e6 ones capped."""
    m = get_method(method)
    W = gaussian(32, 256, seed=3) * std
    qt = m.quantize(W, m.make_config(**({"qat_steps": 0} if method == "seq" else {})))
    parts = qt.parts.values() if isinstance(qt, MixedTensor) else [qt]
    assert all(p.scale.dtype == torch.float32 for p in parts)
    assert cosine(W, dequantize(qt)) > 0.85
    assert float(dequantize(qt).abs().max()) < 10 * float(W.abs().max())


def test_float16_scales_stay_float16_in_range():
    qt = quantize_seq(gaussian(16, 128), SEQConfig(group_size=64))
    assert qt.scale.dtype == torch.float16
