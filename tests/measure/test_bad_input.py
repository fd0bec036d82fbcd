"""Bad input is refused with a QcoreError a person can act on; degenerate but valid input gives clean results."""

import math

import pytest
import torch

from qcore.errors import QcoreError
from qcore.formats.storage import load
from qcore.measure import pipeline
from qcore.methods.quant import QuantizedTensor
from qcore.methods.registry import METHODS, get_method
from qcore.methods.rtn import RTNConfig, quantize_rtn
from qcore.models.presets import Model


def weights(out: int = 8, n: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(out, n, generator=torch.Generator().manual_seed(seed))


def non_finite_numbers(value, path: str = "record") -> list[str]:
    """Paths of every float in a nested record that is NaN or infinite."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite_numbers(v, f"{path}.{k}")]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in non_finite_numbers(v, f"{path}[{i}]")]
    if isinstance(value, float) and not math.isfinite(value):
        return [path]
    return []


def test_unknown_method_lists_known_ones():
    with pytest.raises(QcoreError, match="unknown method 'nope'") as info:
        get_method("nope")
    for name in ("int8", "int2", "rtn", *METHODS):
        assert name in str(info.value)


def test_rtn_config_refuses_5_bits():
    with pytest.raises(QcoreError, match="bits must be one of 2, 3, 4, 8; got 5"):
        RTNConfig(bits=5)


def test_make_config_refuses_5_bits():
    with pytest.raises(QcoreError, match="bits must be one of 2, 3, 4, 8; got 5"):
        get_method("rtn").make_config(bits=5)


def test_negative_group_size_is_refused():
    with pytest.raises(QcoreError, match="group_size must be 0"):
        RTNConfig(group_size=-32)


def test_unknown_option_is_refused():
    with pytest.raises(QcoreError, match="method 'rtn' has no option group"):
        get_method("rtn").make_config(group=32)


def test_int8_refuses_4_bits():
    with pytest.raises(QcoreError, match="method 'int8' fixes bits=8"):
        get_method("int8").make_config(bits=4)


def test_int8_accepts_its_own_fixed_bits():
    cfg = get_method("int8").make_config(bits=8)
    assert (cfg.bits, cfg.group_size, cfg.sym, cfg.clip) == (8, 0, True, False)


def test_int8_refuses_4_bits_through_pipeline():
    model = Model("m", {"w": weights()})
    with pytest.raises(QcoreError, match="fixes bits=8"):
        pipeline.run(model, "int8", {"bits": 4})


def test_nan_weights_are_refused_with_counts():
    W = weights()
    W[0, 0] = W[3, 5] = float("nan")
    with pytest.raises(QcoreError, match="2 NaN and 0 Inf values"):
        quantize_rtn(W, RTNConfig())


def test_inf_weights_are_refused_with_counts():
    W = weights()
    W[1, 1], W[2, 2], W[4, 4] = float("inf"), float("-inf"), float("nan")
    with pytest.raises(QcoreError, match="1 NaN and 2 Inf values"):
        quantize_rtn(W, RTNConfig())


def test_large_finite_weights_are_not_mistaken_for_inf():
    # their float32 sum overflows, but every value is finite
    W = torch.full((4, 8), 3e38)
    W[:, ::2] = -3e37
    assert quantize_rtn(W, RTNConfig(bits=8)).scale.dtype == torch.float32


def test_finite_weights_whose_range_overflows_float32_are_refused_not_nan():
    W = torch.tensor([[-3e38, 3e38, 1.0, 0.0]])
    with pytest.raises(QcoreError, match="range overflows float32"):
        quantize_rtn(W, RTNConfig(bits=8))


def test_pipeline_names_the_tensor_with_nan():
    bad = weights(seed=1)
    bad[2, 3] = float("nan")
    model = Model("m", {"fc1.weight": weights(), "fc2.weight": bad, "fc2.bias": torch.zeros(8)})
    with pytest.raises(QcoreError, match=r"fc2\.weight: .*1 NaN and 0 Inf"):
        pipeline.run(model, "rtn")


@pytest.mark.parametrize("method", ("int2", "int8", "rtn"))
def test_zero_and_constant_rows_give_a_finite_record(method):
    W = weights(6, 32)
    W[0] = 0.0
    W[2] = 0.25
    W[4] = -3.0
    model = Model("degenerate", {"w": W, "zeros": torch.zeros(4, 16), "b": torch.zeros(6)})
    record = pipeline.run(model, method).record
    assert non_finite_numbers(record) == []
    assert record["quantized_params"] == 6 * 32 + 4 * 16
    assert 0.9 < record["weight_cosine"] <= 1.0


def test_all_zero_model_record_is_finite():
    model = Model("zeros", {"w": torch.zeros(4, 16)})
    record = pipeline.run(model, "int2").record
    assert non_finite_numbers(record) == []
    assert record["weight_cosine"] == 1.0
    assert record["sqnr_db"] is None  # zero error: infinite SQNR is reported as null


def test_1d_tensor_is_refused_by_quantize_rtn():
    with pytest.raises(QcoreError, match="only tensors with two or more dimensions"):
        quantize_rtn(torch.ones(8), RTNConfig())


def test_pipeline_keeps_1d_and_empty_tensors_fp16():
    model = Model("m", {"w": weights(), "bias": torch.linspace(-1, 1, 8), "empty": torch.zeros(4, 0)})
    result = pipeline.run(model, "rtn")
    assert isinstance(result.quantized["w"], QuantizedTensor)
    assert not isinstance(result.quantized["bias"], QuantizedTensor)
    assert not isinstance(result.quantized["empty"], QuantizedTensor)
    assert result.record["quantized_params"] == 8 * 16
    assert result.record["params"] == 8 * 16 + 8
    assert non_finite_numbers(result.record) == []
    stored = load(result.artifact)
    assert torch.equal(stored["bias"], torch.linspace(-1, 1, 8).half())
    assert stored["empty"].shape == (4, 0)


def test_pipeline_keeps_empty_tensor_with_zero_rows_fp16():
    model = Model("m", {"w": weights(), "empty": torch.zeros(0, 4)})
    result = pipeline.run(model, "rtn")
    assert result.record["quantized_params"] == 8 * 16
    assert load(result.artifact)["empty"].shape == (0, 4)


@pytest.mark.parametrize(
    "shape",
    [
        (4, 0),
        (2, 3, 0),
        (0, 4),
    ],
)
def test_empty_2d_tensor_is_refused_by_quantize_rtn(shape):
    with pytest.raises(QcoreError, match="cannot quantize an empty tensor"):
        quantize_rtn(torch.zeros(shape), RTNConfig())


@pytest.mark.parametrize("field", ("include", "exclude"))
def test_bad_regex_in_policy_is_refused(field):
    with pytest.raises(QcoreError, match=r"bad regular expression '\(fc'"):
        pipeline.Policy(**{field: "(fc"})


def test_unknown_codec_is_refused():
    with pytest.raises(QcoreError, match="unknown codec 'gzip'"):
        pipeline.run(Model("m", {"w": weights()}), "rtn", codec="gzip")


def test_a_model_whose_tensors_are_all_empty_is_refused():
    model = Model("hollow", {"a.weight": torch.zeros(0, 4), "b.weight": torch.zeros(4, 0), "c.bias": torch.zeros(0)})
    with pytest.raises(QcoreError, match="hollow: no tensor with any elements to quantize"):
        pipeline.run(model, "int8")
