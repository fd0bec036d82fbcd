"""The dashboard through Streamlit's AppTest: every page, the main interactions, and CLI parity.

Every test starts from app.py, so the shared sidebar is part of what is tested.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import qcore
from qcore import Method, RTNConfig, quantize_rtn
from qcore.report import fmt_bytes, fmt_cos, fmt_db, render_markdown
from ui import cache
from ui.i18n import TEXT

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["quantize", "scaling", "compare", "extrapolate", "report"]
TIMEOUT = 120  # seconds; the machine is shared, so be generous (never asserted as a speed)

pytestmark = pytest.mark.usefixtures("navigation_app")


def cli_record(*args: str) -> dict:
    """What `python -m qcore run ... --json` prints, as the reference for the page's figures."""
    out = subprocess.run(
        [sys.executable, "-m", "qcore", "run", *args, "--json"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def start() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run(timeout=TIMEOUT)
    assert not at.exception
    return at


def go(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"pages/{page}.py").run(timeout=TIMEOUT)
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def charts(at: AppTest) -> list:
    return at.get("plotly_chart")


def visible_text(at: AppTest) -> set[str]:
    """Titles, subheaders, widget labels and button labels: what a user reads first."""
    texts = {e.value for e in (*at.title, *at.subheader)}
    for kind in ("selectbox", "radio", "multiselect", "number_input", "toggle", "button", "button_group"):
        texts |= {getattr(w, "label", "") or w.proto.label for w in at.get(kind)}
    return texts - {""}


def test_every_page_renders_with_the_shared_sidebar():
    at = start()
    for page in PAGES:
        go(at, page)
        assert at.title, f"{page} shows no title"
        assert not at.error, f"{page}: {[e.value for e in at.error]}"
        assert at.radio(key="lang").value == "en"
        assert at.selectbox(key="preset").value == "large"  # the demo default
        assert at.selectbox(key="method").value == "int2"
        assert at.selectbox(key="method").options == list(qcore.METHODS)  # read from the registry


def test_widgets_have_stable_keys():
    at = start()
    for key in ("preset", "method", "opt_int2_bits"):
        assert at.selectbox(key=key).key == key
    assert at.radio(key="lang").key == "lang"
    assert at.number_input(key="opt_int2_group_size").key == "opt_int2_group_size"
    assert at.toggle(key="opt_int2_sym").key == "opt_int2_sym"
    assert at.button(key="q_run").key == "q_run"
    for page, keys in {
        "scaling": ("s_presets", "s_methods", "s_run"),
        "compare": ("c_bits", "c_groups", "c_clip", "c_baselines", "c_run"),
        "extrapolate": ("x_methods", "x_run"),
    }.items():
        go(at, page)
        for key in keys[:-1]:
            assert at.multiselect(key=key).key == key
        assert at.button(key=keys[-1]).key == keys[-1]


@dataclass(frozen=True)
class DemoConfig:
    bits: int = field(default=4, metadata={"help": "code width", "choices": (2, 4)})
    target_bpw: float = field(default=3.0, metadata={"help": "a budget"})
    sym: bool = False


def quantize_demo(W, cfg: DemoConfig):
    return quantize_rtn(W, RTNConfig(bits=cfg.bits, sym=cfg.sym), method="demo")


def test_a_new_registry_method_appears_with_its_options(monkeypatch):
    demo = Method("demo", "a method registered by this test", quantize_demo, DemoConfig)
    monkeypatch.setitem(qcore.METHODS, "demo", demo)
    at = start()
    assert "demo" in at.selectbox(key="method").options
    at.selectbox(key="method").set_value("demo").run(timeout=TIMEOUT)
    assert at.selectbox(key="opt_demo_bits").options == ["2", "4"]
    assert at.number_input(key="opt_demo_target_bpw").value == 3.0
    assert at.toggle(key="opt_demo_sym").value is False
    at.selectbox(key="preset").set_value("small")
    at.button(key="q_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    assert "Weight cosine" in metrics(at)


def test_fixed_options_are_disabled_and_free_ones_are_not():
    at = start()
    assert at.selectbox(key="opt_int2_bits").disabled
    assert at.toggle(key="opt_int2_clip").disabled
    at.selectbox(key="method").set_value("rtn").run(timeout=TIMEOUT)
    assert not at.selectbox(key="opt_rtn_bits").disabled
    assert not at.toggle(key="opt_rtn_clip").disabled


def test_quantize_large_int2_shows_what_the_cli_prints():
    expected = cli_record("--preset", "large", "--method", "int2")
    at = start()
    at.selectbox(key="preset").set_value("large")
    at.selectbox(key="method").set_value("int2")
    at.button(key="q_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    shown = metrics(at)
    assert shown["Weight cosine"] == fmt_cos(expected["weight_cosine"])
    assert shown["Compression ratio"] == f"{expected['compression_ratio']:.2f}x"
    assert shown["SQNR"] == fmt_db(expected["sqnr_db"])
    assert shown["Output cosine"] == fmt_cos(expected["output_cosine"])
    assert shown["Memory saved"] == fmt_bytes(expected["saved_bytes"])
    cosine = next(m for m in at.metric if m.label == "Weight cosine")
    assert cosine.proto.delta == expected["quality"]  # the band sits under the cosine
    ratio = next(m for m in at.metric if m.label == "Compression ratio")
    assert f"{expected['theoretical_ratio']:.2f}x" in ratio.proto.delta
    assert len(charts(at)) == 3  # per-layer cosines, level histogram, size breakdown
    assert {b.key for b in at.get("download_button")} == {"q_dl_parquet", "q_dl_json"}
    assert at.dataframe[0].value.shape[0] == len(expected["layers"])


def test_rtn_options_reach_the_run_like_cli_flags():
    expected = cli_record("--preset", "small", "--method", "rtn", "--bits", "3", "--group-size", "32", "--clip")
    at = start()
    at.selectbox(key="preset").set_value("small")
    at.selectbox(key="method").set_value("rtn").run(timeout=TIMEOUT)
    at.selectbox(key="opt_rtn_bits").set_value(3)
    at.number_input(key="opt_rtn_group_size").set_value(32)
    at.toggle(key="opt_rtn_clip").set_value(True)
    at.button(key="q_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    assert metrics(at)["Weight cosine"] == fmt_cos(expected["weight_cosine"])
    group = at.number_input(key="q_group")  # group-wise scales: the histogram can show any group of a row
    assert not group.disabled
    group.set_value(1).run(timeout=TIMEOUT)
    assert not at.exception and len(charts(at)) == 3
    cli = at.code[0].value.split()
    assert cli[:7] == ["python", "-m", "qcore", "run", "--preset", "small", "--method"] and "rtn" in cli
    assert {"--bits", "3", "--group-size", "32", "--clip"} <= set(cli)


def test_zstd_codec_gain_is_reported_on_its_own():
    expected = cli_record("--preset", "small", "--method", "int2", "--codec", "zstd")
    at = start()
    at.selectbox(key="preset").set_value("small")
    at.button_group(key="q_codec").set_value("zstd")
    at.button(key="q_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    assert metrics(at)["Compression ratio"] == f"{expected['compression_ratio']:.2f}x"
    gain = expected["breakdown"]["codec_gain_bytes"]
    assert gain > 0
    assert any(f"codec gain {fmt_bytes(gain)}" in c.value for c in at.caption)
    assert "--codec zstd" in at.code[0].value


def test_rerendering_an_unchanged_view_does_not_quantize_again():
    cache.quantize.clear()
    at = start()
    at.selectbox(key="preset").set_value("medium")
    before = cache.CALLS["quantize"]
    at.button(key="q_run").click().run(timeout=TIMEOUT)
    assert cache.CALLS["quantize"] == before + 1
    cosine = metrics(at)["Weight cosine"]
    at.run(timeout=TIMEOUT)  # a plain rerun, as any widget interaction causes
    at.selectbox(key="q_layer").set_value("fc1.weight").run(timeout=TIMEOUT)  # a view-only change
    go(at, "scaling")
    go(at, "quantize")
    assert cache.CALLS["quantize"] == before + 1
    assert metrics(at)["Weight cosine"] == cosine


def test_choices_survive_a_page_switch():
    at = start()
    at.selectbox(key="preset").set_value("small")
    at.selectbox(key="method").set_value("rtn").run(timeout=TIMEOUT)
    at.selectbox(key="opt_rtn_bits").set_value(3).run(timeout=TIMEOUT)
    go(at, "scaling")
    at.multiselect(key="s_methods").set_value(["int8"]).run(timeout=TIMEOUT)
    go(at, "compare")
    go(at, "scaling")
    assert at.multiselect(key="s_methods").value == ["int8"]
    go(at, "quantize")
    assert at.selectbox(key="preset").value == "small"
    assert at.selectbox(key="method").value == "rtn"
    assert at.selectbox(key="opt_rtn_bits").value == 3


def test_language_switch_changes_visible_labels():
    assert set(TEXT["en"]) <= set(TEXT["zh"]), "every English text has a Chinese one"
    at = start()
    english = visible_text(at)
    at.radio(key="lang").set_value("zh").run(timeout=TIMEOUT)
    chinese = visible_text(at)
    assert "Quantize a model" in english and "量化模型" in chinese
    assert "Run" in english and "运行" in chinese
    assert not english & chinese - {"English", "中文", "none", "zstd"}  # nothing left untranslated
    go(at, "scaling")
    assert at.title[0].value == TEXT["zh"]["s_title"]


def test_errors_are_shown_not_raised(monkeypatch):
    def broken(*args, **kwargs):
        raise qcore.QcoreError("the weights are on fire")

    cache.quantize.clear()
    monkeypatch.setattr(cache.qcore, "run", broken)
    at = start()
    at.selectbox(key="preset").set_value("small")
    at.button(key="q_run").click().run(timeout=TIMEOUT)
    assert not at.exception
    assert "the weights are on fire" in at.error[0].value

    def buggy(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    cache.quantize.clear()
    monkeypatch.setattr(cache.qcore, "run", buggy)
    at.button(key="q_run").click().run(timeout=TIMEOUT)
    assert not at.exception
    assert "ZeroDivisionError" in at.error[0].value and "python -m qcore" in at.error[0].value
    cache.quantize.clear()


def test_scaling_shows_six_rows_four_charts_and_the_reference():
    at = start()
    go(at, "scaling")
    assert not charts(at)  # heavy work waits for the button
    at.button(key="s_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert table.shape[0] == 6
    assert "8.12x" in set(table["Ratio (ref)"])  # the reference report's INT2 ratio beside ours
    assert len(charts(at)) == 4
    trends = " ".join(m.value for m in at.markdown)
    assert "theoretical" in trends and "Params grow" in trends


def test_compare_draws_a_pareto_front_and_a_sortable_table():
    at = start()
    at.selectbox(key="preset").set_value("small")
    go(at, "compare")
    at.button(key="c_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert table.shape[0] == 8  # the default sweep: int8, int2 and rtn {2,3,4} bits x {per-channel, g64}
    assert table["On front"].any() and not table["On front"].all()
    assert len(charts(at)) == 1
    at.button_group(key="c_y").set_value("output_cosine").run(timeout=TIMEOUT)
    assert not at.exception and len(charts(at)) == 1


def test_extrapolate_names_its_basis_and_scales_each_method():
    at = start()
    go(at, "extrapolate")
    assert "Naive basis" in at.warning[0].value
    at.button(key="x_run").click().run(timeout=TIMEOUT)
    at.number_input(key="x_custom").set_value(13.0).run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    models = set(table["Model"])
    assert {"large", "Qwen3-0.6B (~0.6B)", "1B", "LLaMA-7B (~7B)", "Custom (13B)"} <= models
    assert set(table["Method"]) == {"int8", "int2"}
    assert len(charts(at)) == 1


def test_report_is_the_cli_markdown_in_the_chosen_language():
    at = start()
    go(at, "report")
    if at.button:  # nothing has run yet in this session: build it
        at.button(key="r_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    presets, specs = at.session_state["s_last"]
    rows = cache.scaling(presets, specs)  # the same cached rows the page rendered
    assert at.markdown[-1].value == render_markdown(rows, "en").rstrip("\n")  # Streamlit trims the last newline
    assert {b.key for b in at.get("download_button")} == {"r_dl_md", "r_dl_csv"}
    at.radio(key="lang").set_value("zh").run(timeout=TIMEOUT)
    assert at.markdown[-1].value == render_markdown(rows, "zh").rstrip("\n")
    assert at.markdown[-1].value.startswith("# 量化方法缩放分析报告")
