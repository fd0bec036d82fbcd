"""The one method contract: every registered method is quantize(W, cfg, *, H=None) -> Quantized, stamped by the
registry with its name and config; defaults live once, in the config; library and CLI agree on them."""

import dataclasses
import io
import json
from contextlib import redirect_stdout

import pytest
import torch

from qcore import METHODS, QcoreError, Quantized, get_method, load_model, run
from qcore.cli import main
from qcore.methods.registry import config_dict
from qcore.methods.rtn import Int8Config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_follows_the_contract(name):
    m = get_method(name)
    W = torch.randn(24, 96, generator=torch.Generator().manual_seed(1)) * 0.05
    before = W.clone()
    cfg = m.make_config()
    qt = m.quantize(W, cfg, H=torch.eye(96) if m.needs_calibration else None)
    assert isinstance(qt, Quantized)
    assert (qt.method, qt.config) == (name, config_dict(cfg))  # stamped by the registry
    assert qt.dequantize().shape == W.shape and qt.shape == (24, 96)
    assert torch.equal(W, before)  # a pure function: the input is untouched
    if qt.row_local:  # rows stand alone: a block of them dequantizes on its own
        assert torch.equal(qt.rows(5, 11).dequantize(), qt.dequantize()[5:11])
    else:  # a rotation mixes every row into every other: only the whole tensor dequantizes
        with pytest.raises(ValueError, match="mixes all rows"):
            qt.rows(5, 11)


@pytest.mark.parametrize("name", list(METHODS))
def test_defaults_live_once_in_the_config(name):
    m = get_method(name)
    assert m.make_config() == m.config_cls()
    assert {o.name: o.default for o in m.options()} == dataclasses.asdict(m.config_cls())


def cli_record(*argv: str) -> dict:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["run", *argv, "--json"]) == 0
    return json.loads(out.getvalue())


@pytest.mark.parametrize("name", list(METHODS))
def test_library_and_cli_agree_on_a_methods_defaults(name):
    # digits-small has code (gptq calibrates) and a loss (seq trains); mixed's 2.5 bpw needs a model large enough
    # that FP16 biases and the container fit in the budget
    model = "large" if name == "mixed" else "digits-small"
    lib = run(load_model(model), name).record
    cli = cli_record("--preset", model, "--method", name)
    assert cli["config"] == lib["config"] == config_dict(get_method(name).config_cls())
    for key in ("quantized_bytes", "weight_cosine", "sqnr_db", "output_cosine", "task", "bpw"):
        assert cli[key] == lib[key], key


def test_gptq_damping_has_one_default():
    assert get_method("gptq").make_config().damp == 0.1
    assert cli_record("--preset", "digits-small", "--method", "gptq")["config"]["damp"] == 0.1


def test_fixed_options_are_refused_everywhere():
    with pytest.raises(QcoreError, match="fixes bits=8"):
        get_method("int8").make_config(bits=4)
    with pytest.raises(QcoreError, match="fixes bits=8"):
        Int8Config(bits=4)
    assert get_method("int8").make_config(bits=8) == Int8Config()
    assert [o.name for o in get_method("int8").options() if o.fixed] == ["bits", "group_size", "sym", "clip", "rotate"]


def test_shared_flags_apply_only_where_a_method_takes_them():
    assert get_method("int2").takes({"bits": 4, "group_size": 64}) == {}
    assert get_method("hqq").takes({"bits": 3, "iters": 5, "damp": 0.2}) == {"bits": 3, "iters": 5}
    assert get_method("nf4").takes({"bits": 4, "double_quant": True}) == {"double_quant": True}
