"""Presets, metrics, pipeline, analyses and layer inspection."""

import math

import pytest
import torch

from qcore import ErrorSums, Policy, cosine, get_method, load_preset, quality_band, run
from qcore.analysis.levels import group_levels, group_weights, level_usage
from qcore.analysis.sweep import pareto_front
from qcore.measure.metrics import predicted_cosine, range_in_std
from qcore.models.presets import mlp_widths


@pytest.mark.parametrize(("name", "params"), [("small", 10_976), ("medium", 172_928), ("large", 2_756_096)])
def test_preset_params_match_the_reference(name, params):
    model = load_preset(name)
    assert model.params == params
    d = {"small": 64, "medium": 256, "large": 1024}[name]
    assert [model.tensors["fc1.weight"].shape[1]] + [
        model.tensors[f"fc{i}.weight"].shape[0] for i in (1, 2, 3)
    ] == mlp_widths(d)


def test_preset_is_reproducible_and_seeded():
    a, b = load_preset("small", seed=7), load_preset("small", seed=7)
    c = load_preset("small", seed=8)
    assert all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
    assert not torch.equal(a.tensors["fc1.weight"], c.tensors["fc1.weight"])


def test_preset_weights_have_std_one_over_sqrt_fan_in():
    W = load_preset("large").tensors["fc3.weight"]  # (2048, 1024)
    assert W.std().item() == pytest.approx(1024**-0.5, rel=0.01)


def test_error_sums_match_a_plain_float64_reference():
    gen = torch.Generator().manual_seed(0)
    W, W_hat = torch.randn(30, 20, generator=gen), torch.randn(30, 20, generator=gen)
    s = ErrorSums().add(W, W_hat)
    w, h = W.double().flatten(), W_hat.double().flatten()
    assert s.cosine == pytest.approx(float(w @ h / (w.norm() * h.norm())), abs=1e-12)
    assert s.sqnr_db == pytest.approx(10 * math.log10(float((w * w).sum() / ((w - h) ** 2).sum())), abs=1e-9)


def test_cosine_edge_cases():
    z = torch.zeros(5)
    assert cosine(z, z) == 1.0
    assert cosine(z, torch.ones(5)) == 0.0
    assert cosine(torch.ones(5), torch.ones(5)) == 1.0  # clamped, never 1.0000000002
    assert ErrorSums().add(torch.ones(3), torch.ones(3)).sqnr_db == math.inf


@pytest.mark.parametrize(("cos", "band"), [(0.99, "excellent"), (0.93, "good"), (0.87, "acceptable"), (0.5, "poor")])
def test_quality_bands(cos, band):
    assert quality_band(cos) == band


def test_range_in_std_grows_with_row_length_and_predicts_int2():
    gen = torch.Generator().manual_seed(0)
    short, long = torch.randn(512, 16, generator=gen), torch.randn(512, 1024, generator=gen)
    assert range_in_std(long) > range_in_std(short) + 2
    m = get_method("int2")
    for W in (short, long):
        measured = cosine(W, _dequant(m.quantize(W, m.make_config())))
        assert predicted_cosine(range_in_std(W), 2) == pytest.approx(measured, abs=0.01)


def _dequant(qt):
    from qcore import dequantize

    return dequantize(qt)


def test_record_figures_are_consistent():
    rec = run(load_preset("medium"), "rtn", {"bits": 4, "group_size": 64}).record
    assert rec["compression_ratio"] == pytest.approx(rec["fp16_bytes"] / rec["quantized_bytes"])
    assert rec["bpw"] == pytest.approx(8 * rec["quantized_bytes"] / rec["params"])
    assert rec["memory_saving"] == pytest.approx(1 - rec["quantized_bytes"] / rec["fp16_bytes"])
    assert rec["payload_bpw"] == 4.0 and rec["theoretical_ratio"] == 4.0
    assert rec["quantized_params"] == sum(la["params"] for la in rec["layers"])
    assert rec["quantized_params"] == rec["params"] - sum(w for w in (128, 256, 512))  # biases stay FP16
    assert 0 < rec["output_cosine"] <= 1 and rec["threads"] >= 1


@pytest.mark.parametrize(("method", "keep"), [("int8", True), ("rtn", False), ("mixed", True), ("gptq", False)])
def test_fp16_bytes_counted_in_the_run_equal_a_separate_fp16_artifact(method, keep):
    from qcore.measure.pipeline import fp16_baseline_bytes

    model = load_preset("medium")
    rec = run(model, method, keep=keep).record
    assert rec["fp16_bytes"] == fp16_baseline_bytes(model)


def test_policy_keeps_the_head_in_fp16():
    rec = run(load_preset("small"), "int2", policy=Policy(quantize_head=False)).record
    assert [la["name"] for la in rec["layers"]] == ["fc1.weight", "fc2.weight"]
    assert "head kept FP16" in rec["policy"]
    rec = run(load_preset("small"), "int2", policy=Policy(exclude=r"fc[12]\.")).record
    assert [la["name"] for la in rec["layers"]] == ["fc3.weight"]


def test_error_falls_as_bits_rise_on_a_preset():
    model = load_preset("medium")
    cos = [run(model, "rtn", {"bits": b}).record["weight_cosine"] for b in (2, 3, 4, 8)]
    assert cos == sorted(cos) and cos[0] < cos[-1]


def brute_force_front(points):
    return [not any(xj <= xi and yj >= yi and (xj, yj) != (xi, yi) for xj, yj in points) for xi, yi in points]


def test_pareto_front_matches_brute_force():
    gen = torch.Generator().manual_seed(3)
    pts = [(float(x), float(y)) for x, y in torch.rand(40, 2, generator=gen)]
    recs = [{"bpw": x, "weight_cosine": y} for x, y in pts]
    assert pareto_front(recs) == brute_force_front(pts)


def test_pareto_front_skips_missing_values():
    recs = [{"bpw": 2, "output_cosine": None}, {"bpw": 4, "output_cosine": 0.9}]
    assert pareto_front(recs, y="output_cosine") == [False, True]


def test_group_levels_are_the_values_codes_dequantize_to():
    W = load_preset("small").tensors["fc2.weight"]
    m = get_method("rtn")
    qt = m.quantize(W, m.make_config(bits=2, group_size=16))
    W_hat = _dequant(qt)
    levels = group_levels(qt, row=3, group=1)
    assert levels.shape == (4,)
    got = W_hat[3, 16:32]
    assert torch.equal(got, levels[qt.q[3, 16:32].long()])
    assert level_usage(qt, 3, 1).sum() == 16
    assert torch.equal(group_weights(W, qt, 3, 1), W[3, 16:32])


def test_the_levels_of_a_rotated_layer_are_drawn_over_the_rotated_weights():
    W = torch.randn(16, 64, generator=torch.Generator().manual_seed(0))
    qt = get_method("rtn").quantize(W, get_method("rtn").make_config(bits=3, group_size=32, rotate=True))
    rotated = qt.rotation.apply(W)
    assert torch.equal(group_weights(W, qt, 2, 1), rotated[2, 32:64])
    levels = group_levels(qt, 2, 1)
    assert float((group_weights(W, qt, 2, 1)[:, None] - levels).abs().min(1).values.max()) <= float(
        qt.scale[2, 1].abs()
    )
