"""The dashboard through Streamlit's AppTest: every page, the main interactions, and CLI parity.

Every test starts from app.py, so the shared sidebar is part of what is tested.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

import qcore
from qcore import Method, Policy, RTNConfig, quantize_rtn
from qcore.analysis.report import render_markdown
from qcore.format import fmt_bytes, fmt_cos, fmt_db
from ui import cache
from ui.i18n import catalog

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["quantize", "scaling", "compare", "extrapolate", "report"]
TIMEOUT = 120  # seconds; the machine is shared, so be generous (never asserted as a speed)


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
    at.switch_page(f"app_pages/{page}.py").run(timeout=TIMEOUT)
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def charts(at: AppTest) -> list:
    return at.get("plotly_chart")


def summary(at: AppTest):
    """The model summary table (one row per tensor, with the policy's decision)."""
    return next(d.value for d in at.dataframe if "Policy" in d.value.columns)


def layers_table(at: AppTest):
    return next(d.value for d in at.dataframe if "Range / std" in d.value.columns)


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


def test_the_model_list_is_labelled_without_opening_a_model(monkeypatch):
    """The sidebar gathers its labels before it draws (qcore's listing sizes trained models from their configs):
    only the page opens a model, the one chosen."""
    from ui import models

    opened, load = [], models.load_model
    monkeypatch.setattr(models, "load_model", lambda name: opened.append(name) or load(name))
    at = start()
    assert set(opened) == {"large"}
    labels = {name: f"{name} · {load(name).params:,} params" for name in qcore.model_names()}
    assert at.selectbox(key="preset").options == list(labels.values())


WIDGETS = ("selectbox", "radio", "multiselect", "number_input", "toggle", "button", "button_group", "text_input",
           "text_area", "file_uploader")  # fmt: skip


def test_every_widget_on_every_page_has_a_key_of_its_own():
    """Keyed widgets keep their state across reruns and page switches; an unkeyed one would reset."""
    at = start()
    at.button(key="q_run").click().run(timeout=TIMEOUT)  # the results add widgets (layer, row, group)
    for page in PAGES:
        go(at, page)
        keys = [w.key for kind in WIDGETS for w in at.get(kind)]
        assert keys and None not in keys, f"{page}: an unkeyed widget"
        assert len(keys) == len(set(keys)), f"{page}: a key used twice"


@dataclass(frozen=True)
class DemoConfig:
    bits: int = field(default=4, metadata={"help": "code width", "choices": (2, 4)})
    target_bpw: float = field(default=3.0, metadata={"help": "a budget"})
    sym: bool = False


def quantize_demo(W, cfg: DemoConfig, *, H=None, progress=None):
    return quantize_rtn(W, RTNConfig(bits=cfg.bits, sym=cfg.sym))


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
    assert cosine.proto.delta == f"{expected['quality']} · judged on weight cosine"  # the band, and its evidence
    ratio = next(m for m in at.metric if m.label == "Compression ratio")
    assert f"{expected['theoretical_ratio']:.2f}x" in ratio.proto.delta
    assert len(charts(at)) == 3  # per-layer cosines, level histogram, size breakdown
    lim = expected["limits"]
    limits_text = next(m.value for m in at.markdown if "Against the limits" in m.value)
    assert fmt_db(lim["bound_sqnr_db"]) in limits_text and fmt_db(lim["scalar_sqnr_db"]) in limits_text
    assert f"{fmt_db(lim['gap_to_scalar_db'])} below the best scalar quantizer" in limits_text
    assert {b.key for b in at.get("download_button")} == {"q_dl_parquet", "q_dl_json"}
    assert layers_table(at).shape[0] == len(expected["layers"])
    assert "Predicted cosine" in layers_table(at).columns  # min-max int2 has the uniform-noise prediction
    assert summary(at).shape[0] == 6  # the model summary: 3 weights quantized, 3 biases kept FP16
    at.selectbox(key="method").set_value("int8")
    at.button(key="q_run").click().run(timeout=TIMEOUT)
    assert "Predicted cosine" not in layers_table(at).columns  # symmetric: no prediction, no column of blanks


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
    assert set(catalog("en")) <= set(catalog("zh")), "every English text has a Chinese one"
    at = start()
    english = visible_text(at)
    at.radio(key="lang").set_value("zh").run(timeout=TIMEOUT)
    chinese = visible_text(at)
    assert "Quantize a model" in english and "量化模型" in chinese
    assert "Run" in english and "运行" in chinese
    assert not english & chinese - {"English", "中文", "none", "zstd"}  # nothing left untranslated
    go(at, "scaling")
    assert at.title[0].value == catalog("zh")["s_title"]


def test_errors_are_shown_not_raised(monkeypatch):
    def broken(*args, **kwargs):
        raise qcore.QcoreError("the weights are on fire")

    cache.quantize.clear()
    monkeypatch.setattr(cache, "run_spec", broken)
    at = start()
    at.selectbox(key="preset").set_value("small")
    at.button(key="q_run").click().run(timeout=TIMEOUT)
    assert not at.exception
    assert "the weights are on fire" in at.error[0].value

    def buggy(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    cache.quantize.clear()
    monkeypatch.setattr(cache, "run_spec", buggy)
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
    names = [d.get("name") for d in chart_json(at, "c_pareto_chart")["data"]]
    assert "distortion-rate bound (Gaussian)" in names and "best scalar quantizer (Lloyd-Max, Gaussian)" in names
    at.button_group(key="c_y").set_value("output_cosine").run(timeout=TIMEOUT)
    assert not at.exception and len(charts(at)) == 1


def test_report_is_the_cli_markdown_in_the_chosen_language():
    at = start()
    go(at, "report")
    assert not at.markdown or "Scaling report" not in at.markdown[-1].value  # nothing built yet
    assert not at.expander  # the inputs are open above the start hint
    at.button(key="r_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    assert not any("Choose presets and methods, then build" in i.value for i in at.info)
    assert [(e.label, e.proto.expanded) for e in at.expander] == [(catalog("en")["r_inputs"], False)]  # folded
    rows = cache.scaling(at.session_state["r_last"])  # the same cached rows the page rendered
    assert at.markdown[-1].value == render_markdown(rows, "en").rstrip("\n")  # Streamlit trims the last newline
    assert {b.key for b in at.get("download_button")} == {"r_dl_md", "r_dl_csv"}
    at.radio(key="lang").set_value("zh").run(timeout=TIMEOUT)
    assert at.markdown[-1].value == render_markdown(rows, "zh").rstrip("\n")
    assert at.markdown[-1].value.startswith("# 量化方法缩放分析报告")


# ---- Extrapolate: architecture-exact, the CLI's figures ------------------------------------------------------


def cli_extrapolate(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "qcore", "extrapolate", *args, "--json"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def row_of(df, **match):
    hits = df
    for col, value in match.items():
        hits = hits[hits[col] == value]
    assert len(hits) == 1, f"{match}: {len(hits)} rows"
    return hits.iloc[0]


def chart_json(at: AppTest, key: str) -> dict:
    return json.loads(next(c for c in charts(at) if c.proto.id.endswith(f"-{key}")).proto.spec)


def extrapolate(at: AppTest) -> AppTest:
    go(at, "extrapolate")
    assert not charts(at)  # heavy work waits for the button
    at.button(key="x_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def test_extrapolate_qwen3_int2_shows_the_real_ratio_its_reason_and_the_clis_figures():
    expected = cli_extrapolate("--arch", "Qwen3-0.6B", "--method", "int2")
    at = extrapolate(start())
    sizes = at.dataframe[0].value
    row = row_of(sizes, Architecture="Qwen3-0.6B", Method="int2")
    assert row["Ratio"] == expected["compression_ratio"] and row["Ratio"] < 3  # far below the 8x of 2-bit codes
    assert f"{row['Ratio']:.2f}x" == "2.82x"
    assert row["Size"] == fmt_bytes(expected["quantized_bytes"]) and row["FP16 size"] == fmt_bytes(
        expected["fp16_bytes"]
    )
    assert row["bpw"] == expected["bpw"] and row["Params"] == expected["params"]
    assert row["Weight cosine (extrapolated)"] == expected["accuracy"]["weight_cosine"]
    assert set(sizes["Basis"]) == {"extrapolated"}  # never shown as measured
    assert {"Qwen3-0.6B", "LLaMA-7B"} == set(sizes["Architecture"])
    assert {"int8", "int2", "rtn 4b g128"} == set(sizes["Method"])
    share = expected["bytes_by_kind"]["embedding"] / expected["quantized_bytes"]
    text = " ".join(m.value for m in at.markdown)
    size, embedding = fmt_bytes(expected["quantized_bytes"]), fmt_bytes(expected["bytes_by_kind"]["embedding"])
    why = f"**{share:.1%}** of the {size} file is the FP16 embedding ({embedding})"
    assert why in text and "the real ratio is **2.82x**, not the 8.00x of 2-bit codes alone" in text
    assert "so the real ratio is **2.82x**, not 7.8x" in text  # beside the reference report's 7.8-7.9x
    reference = at.dataframe[2].value
    assert row_of(reference, Architecture="Qwen3-0.6B", Method="int2")["Ratio (ref)"] == "7.80–7.90x"
    memory = at.dataframe[1].value
    kv = row_of(memory, Architecture="Qwen3-0.6B", Weights="int2")["KV cache"]
    assert kv == fmt_bytes(expected["kv_cache"]["bytes"])  # 4096 tokens, batch 1, FP16: the CLI's defaults
    assert len(charts(at)) == 2
    cli = at.code[0].value.splitlines()
    assert "python -m qcore extrapolate --arch Qwen3-0.6B --method int2 --json" in cli
    assert "python -m qcore extrapolate --arch LLaMA-7B --method rtn --group-size 128 --json" in cli


def test_extrapolate_rtn_and_policy_equal_direct_qcore_calls():
    from qcore.analysis.accuracy import fit_accuracy, predict_accuracy
    from qcore.analysis.archs import get_arch
    from qcore.analysis.sizing import arch_sizes

    at = start()
    go(at, "extrapolate")
    at.multiselect(key="x_archs").set_value(["LLaMA-7B"])
    at.multiselect(key="x_methods").set_value(["rtn 4b g128"])
    at.toggle(key="x_q_emb").set_value(True)
    at.button(key="x_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    policy, options = Policy(quantize_embeddings=True), {"bits": 4, "group_size": 128}  # head: quantized
    sizes = arch_sizes(get_arch("LLaMA-7B"), "rtn", options, policy)
    accuracy = predict_accuracy(fit_accuracy("rtn", options), get_arch("LLaMA-7B"), policy)
    row = row_of(at.dataframe[0].value, Architecture="LLaMA-7B", Method="rtn 4b g128")
    assert row["Ratio"] == sizes["compression_ratio"] and row["bpw"] == sizes["bpw"]
    assert row["Weight cosine (extrapolated)"] == accuracy["weight_cosine"]
    assert "--quantize-embeddings" in at.code[0].value


def test_extrapolate_takes_a_pasted_config_and_a_parameter_count():
    from qcore.analysis.archs import arch_from_config, arch_from_params
    from qcore.analysis.sizing import arch_sizes

    config = {"_name_or_path": "my-decoder", "hidden_size": 1536, "intermediate_size": 4096, "num_hidden_layers": 12,
              "num_attention_heads": 12, "num_key_value_heads": 4, "vocab_size": 50_000, "tie_word_embeddings": True}  # fmt: skip
    at = start()
    go(at, "extrapolate")
    at.multiselect(key="x_archs").set_value([])
    at.multiselect(key="x_methods").set_value(["int2"])
    at.button_group(key="x_custom_kind").set_value("config").run(timeout=TIMEOUT)
    at.text_area(key="x_config_text").input(json.dumps(config)).run(timeout=TIMEOUT)
    at.button(key="x_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    expected = arch_sizes(arch_from_config(config), "int2", {}, Policy())  # the one default policy
    row = row_of(at.dataframe[0].value, Architecture="my-decoder", Method="int2")
    assert row["Ratio"] == expected["compression_ratio"] and row["Params"] == expected["params"]
    at.button_group(key="x_custom_kind").set_value("params").run(timeout=TIMEOUT)
    at.number_input(key="x_params").set_value(2.0).run(timeout=TIMEOUT)
    at.button(key="x_run").click().run(timeout=TIMEOUT)
    arch = arch_from_params(2_000_000_000)
    row = row_of(at.dataframe[0].value, Architecture=arch.name, Method="int2")
    assert row["Ratio"] == arch_sizes(arch, "int2", {}, Policy())["compression_ratio"]
    at.button_group(key="x_custom_kind").set_value("config").run(timeout=TIMEOUT)
    at.text_area(key="x_config_text").input('{"hidden_size": 64').run(timeout=TIMEOUT)  # broken JSON
    at.button(key="x_run").click().run(timeout=TIMEOUT)
    assert not at.exception
    assert "config.json is not valid JSON" in at.error[0].value and "Check the custom config.json" in at.error[0].value


def test_extrapolate_memory_what_if_checks_each_budget():
    from qcore.analysis.archs import get_arch, kv_cache_bytes

    at = extrapolate(start())
    at.number_input(key="x_context").set_value(32_768)
    at.number_input(key="x_batch").set_value(4)
    at.button_group(key="x_kv").set_value(8)
    at.number_input(key="x_over_pct").set_value(20.0)
    at.number_input(key="x_over_gib").set_value(1.0).run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    memory = at.dataframe[1].value
    sizes = at.dataframe[0].value
    kv = kv_cache_bytes(get_arch("LLaMA-7B"), 32_768, 4, 8)
    for _, row in memory[memory["Architecture"] == "LLaMA-7B"].iterrows():
        assert row["KV cache"] == fmt_bytes(kv)
        rows = [r for r in cached_rows(at) if r["arch"] == "LLaMA-7B"]
        labelled = {"FP16": rows[0]["fp16_bytes"], **{r["label"]: r["quantized_bytes"] for r in rows}}
        weights = labelled[row["Weights"]]
        total = weights * 1.2 + kv + 1024**3
        assert row["Total"] == fmt_bytes(total)
        for budget in (8, 16, 24, 80):
            room = budget * 1024**3 - total
            assert row[f"{budget} GiB"] == (f"✓ {fmt_bytes(room)} free" if room >= 0 else f"✗ {fmt_bytes(-room)} short")
    assert set(sizes["Architecture"]) == set(memory["Architecture"])


def cached_rows(at: AppTest) -> list[dict]:
    """The rows the Extrapolate page rendered (the same cached call)."""
    from ui import extrap

    return extrap.extrapolate(at.session_state["x_last"])["rows"]


def test_extrapolate_fit_chart_marks_targets_extrapolated_and_prints_the_backtest():
    at = extrapolate(start())
    fig = chart_json(at, "x_fit_chart")
    names = [d.get("name", "") for d in fig["data"]]
    assert "int2 measured (presets)" in names and "int2 fit (dashed: extrapolated)" in names
    line = next(d for d in fig["data"] if d.get("name") == "int2 fit (dashed: extrapolated)")
    assert line["line"]["dash"] == "dash"
    targets = [d for d in fig["data"] if "(extrapolated)" in d.get("name", "") and "Qwen3-0.6B" in d["name"]]
    assert targets and all("measured" not in d["name"] for d in targets)
    assert fig["layout"]["xaxis"]["type"] == "log"
    assert max(line["x"]) >= 9728  # reaches the targets' longest rows (Qwen3's MLP down_proj: 3072 in)
    text = " ".join(m.value for m in at.markdown)
    assert "back-test (fit without the large preset, predict it)" in text
    at.button_group(key="x_fit_y").set_value("weight_cosine").run(timeout=TIMEOUT)
    assert not at.exception and len(charts(at)) == 2
    kinds = chart_json(at, "x_kind_chart")
    assert {"embedding", "attention", "MLP"} <= {d.get("name") for d in kinds["data"]}


# ---- your own weights ------------------------------------------------------------------------------------------


def weights(tmp_path: Path, prefix: str = "model", seed: int = 0, name: str = "tiny.safetensors") -> Path:
    """A small decoder-like checkpoint: embedding, two MLP matrices, a norm, a head and an integer buffer."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    tensors = {
        f"{prefix}.embed_tokens.weight": torch.randn(96, 256, generator=g) * 0.02,
        f"{prefix}.layers.0.mlp.up_proj.weight": torch.randn(384, 256, generator=g) * 0.02,
        f"{prefix}.layers.0.mlp.down_proj.weight": torch.randn(256, 384, generator=g) * 0.02,
        f"{prefix}.layers.0.input_layernorm.weight": torch.ones(256),
        "lm_head.weight": torch.randn(96, 256, generator=g) * 0.02,
        f"{prefix}.position_ids": torch.arange(16),
    }
    path = tmp_path / name
    save_file(tensors, path)
    return path


def upload(at: AppTest, path: Path, name: str | None = None) -> AppTest:
    at.radio(key="source").set_value("upload").run(timeout=TIMEOUT)
    at.file_uploader(key="upload").set_value((name or path.name, path.read_bytes(), "application/octet-stream"))
    at.run(timeout=TIMEOUT)
    assert not at.exception, at.exception
    return at


METHOD_CASES = [  # (method, sidebar widgets to set as (kind, key, value), the CLI flags that mean the same)
    ("int8", [], []),
    (
        "rtn",
        [("selectbox", "opt_rtn_bits", 4), ("number_input", "opt_rtn_group_size", 128)],
        ["--bits", "4", "--group-size", "128"],
    ),
    ("hqq", [("selectbox", "opt_hqq_bits", 2)], ["--bits", "2"]),
]


@pytest.mark.parametrize("method,widgets,flags", METHOD_CASES, ids=[c[0] for c in METHOD_CASES])
def test_an_upload_shows_what_the_cli_prints_for_the_same_file(tmp_path, method, widgets, flags):
    if method not in qcore.METHODS:
        pytest.skip(f"{method} is not registered yet")
    path = weights(tmp_path)
    expected = cli_record("--weights", str(path), "--method", method, *flags)
    at = upload(start(), path)
    at.selectbox(key="method").set_value(method).run(timeout=TIMEOUT)
    for kind, key, value in widgets:
        getattr(at, kind)(key=key).set_value(value)
    at.button(key="q_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error, [e.value for e in at.error]
    shown = metrics(at)
    assert expected["output_cosine"] is None and "Output cosine" not in shown  # no model code: no output cosine
    assert shown["Synthetic-input output cosine"] == fmt_cos(expected["synthetic_output_cosine"])
    assert shown["Weight cosine"] == fmt_cos(expected["weight_cosine"])
    assert shown["Compression ratio"] == f"{expected['compression_ratio']:.2f}x"
    assert shown["SQNR"] == fmt_db(expected["sqnr_db"])
    assert shown["Memory saved"] == fmt_bytes(expected["saved_bytes"])
    layers = layers_table(at)
    assert list(layers["Layer"]) == [la["name"] for la in expected["layers"]]
    assert list(layers["SQNR (dB)"]) == [la["sqnr_db"] for la in expected["layers"]]
    assert list(layers["Synthetic-input output cosine"]) == [la["synthetic_output_cosine"] for la in expected["layers"]]
    assert f"--weights {path.name} --method {method}" in at.code[0].value
    assert {b.key for b in at.get("download_button")} == {"q_dl_parquet", "q_dl_json"}


def test_the_summary_shows_each_tensor_and_what_the_policy_does(tmp_path):
    path = weights(tmp_path)
    at = upload(start(), path)
    table = summary(at)
    role = dict(zip(table["Tensor"], table["Policy"], strict=True))
    assert role["model.embed_tokens.weight"] == "FP16 (embedding)"
    assert role["model.layers.0.mlp.up_proj.weight"] == "quantized" and role["lm_head.weight"] == "quantized"
    assert role["model.layers.0.input_layernorm.weight"] == "FP16 (1-D: bias or norm)"
    assert role["model.position_ids"] == "left out (not float)"
    assert dict(zip(table["Tensor"], table["dtype (stored)"], strict=True))["model.position_ids"] == "I64"
    params = 96 * 256 * 2 + 384 * 256 * 2 + 256
    head = " ".join(m.value for m in at.markdown)
    assert f"{params:,} params" in head and f"FP16 weights {fmt_bytes(2 * params)}" in head
    at.toggle(key="pol_emb").set_value(True)
    at.toggle(key="pol_head").set_value(False)
    at.text_input(key="pol_exclude").input("down_proj").run(timeout=TIMEOUT)
    role = dict(zip(summary(at)["Tensor"], summary(at)["Policy"], strict=True))
    assert role["model.embed_tokens.weight"] == "quantized" and role["lm_head.weight"] == "FP16 (head)"
    assert role["model.layers.0.mlp.down_proj.weight"] == "FP16 (excluded)"
    expected = cli_record(
        "--weights", str(path), "--method", "int2", "--quantize-embeddings", "--keep-head", "--exclude", "down_proj"
    )
    at.button(key="q_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    assert metrics(at)["Compression ratio"] == f"{expected['compression_ratio']:.2f}x"
    assert metrics(at)["Weight cosine"] == fmt_cos(expected["weight_cosine"])
    assert "--keep-head --quantize-embeddings --exclude down_proj" in at.code[0].value
    at.text_input(key="pol_include").input("(unclosed").run(timeout=TIMEOUT)
    assert not at.exception
    assert "bad regular expression" in at.error[0].value and "Fix the regular expression" in at.error[0].value


def test_read_saved_keeps_lazy_files_and_deletes_eager_and_broken_ones(tmp_path):
    import numpy as np

    from ui.models import read_saved

    lazy = weights(tmp_path)
    model = read_saved(lazy, "mine.safetensors")
    assert model.name == "mine.safetensors" and lazy.is_file()  # read on demand while quantizing
    assert model.tensors["lm_head.weight"].shape == (96, 256)
    eager = tmp_path / "w.npz"
    np.savez(eager, w=np.ones((4, 8), dtype=np.float32))
    assert read_saved(eager, "w.npz").params == 32 and not eager.exists()  # in memory now: the file is gone
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"garbage, not a checkpoint")
    with pytest.raises(qcore.QcoreError, match="broken.pt"):
        read_saved(broken, "broken.pt")
    assert not broken.exists()


def test_each_session_sees_only_its_own_upload(tmp_path):
    a = upload(start(), weights(tmp_path, prefix="alpha", name="a.safetensors"))
    b = upload(start(), weights(tmp_path, prefix="beta", seed=1, name="b.safetensors"))
    a.run(timeout=TIMEOUT)
    names_a, names_b = set(summary(a)["Tensor"]), set(summary(b)["Tensor"])
    assert "alpha.embed_tokens.weight" in names_a and not any(n.startswith("beta.") for n in names_a)
    assert "beta.embed_tokens.weight" in names_b and not any(n.startswith("alpha.") for n in names_b)
    assert a.session_state["qlab_upload"].path != b.session_state["qlab_upload"].path


def test_upload_files_are_deleted_when_read_or_replaced(tmp_path):
    import numpy as np

    at = upload(start(), weights(tmp_path))
    lazy = at.session_state["qlab_upload"].path
    assert lazy.is_file()  # safetensors are read lazily: the file stays while it is the session's upload
    npz = tmp_path / "w.npz"
    np.savez(npz, **{"fc.weight": np.random.default_rng(0).standard_normal((32, 64)).astype(np.float32)})
    at.file_uploader(key="upload").set_value(("w.npz", npz.read_bytes(), "application/octet-stream")).run()
    assert not at.exception and not at.error
    assert not lazy.exists() and not lazy.parent.exists()  # replaced: the old file and its folder are gone
    assert at.session_state["qlab_upload"].path is None  # eager formats are deleted once read
    assert not list(at.session_state["qlab_upload_dir"].path.iterdir())  # nothing of them stays on disk
    assert set(summary(at)["Tensor"]) == {"fc.weight"}
    at.file_uploader(key="upload").clear().run()
    assert "qlab_upload" not in at.session_state
    assert "Upload a weight file in the sidebar" in at.info[0].value


def test_a_hostile_upload_says_what_is_wrong_without_a_traceback(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"this is not a weights file, just text")
    at = upload(start(), bad)
    assert not at.exception
    message = at.error[0].value
    assert "starts with text" in message and "Upload a different weight file" in message
    assert not list(Path(at.session_state["qlab_upload_dir"].path).iterdir())  # nothing left behind
    npz = tmp_path / "pickled.npz"
    import numpy as np

    np.savez(npz, x=np.array([{"a": 1}], dtype=object))
    at.file_uploader(key="upload").set_value(("pickled.npz", npz.read_bytes(), "application/octet-stream")).run()
    assert not at.exception and "pickle" in at.error[0].value


@pytest.mark.parametrize("name", ["my model (v2).safetensors", "权重.pt", "x.npz"])
def test_an_upload_error_names_the_users_file_and_no_temp_file(tmp_path, name):
    path = weights(tmp_path)
    blob = path.read_bytes()[:4000] if name.endswith(".safetensors") else b"PK\x03\x04 not an archive"
    bad = tmp_path / "bad"
    bad.write_bytes(blob)
    at = upload(start(), bad, name=name)
    message = at.error[0].value
    assert f"This file cannot be read: {name}: " in message
    folder = at.session_state["qlab_upload_dir"].path
    assert folder.name not in message and hashlib.sha256(blob).hexdigest()[:16] not in message
    assert not list(folder.iterdir())  # nothing left behind


def test_a_kept_upload_is_saved_under_the_users_file_name(tmp_path):
    at = upload(start(), weights(tmp_path), name="../my model.safetensors")
    saved = at.session_state["qlab_upload"].path
    assert saved.name == "my_model.safetensors" and saved.parent.parent == at.session_state["qlab_upload_dir"].path
    assert at.get("subheader")[0].value == "Model: ../my model.safetensors"  # the page still says what was uploaded


def test_an_upload_whose_file_was_removed_asks_for_it_again(tmp_path):
    at = upload(start(), weights(tmp_path))
    shutil.rmtree(at.session_state["qlab_upload_dir"].path)  # as the janitor does once a session has gone
    at.run(timeout=TIMEOUT)
    assert not at.exception
    assert "no longer open in this session; upload it again" in at.error[0].value


def test_the_janitor_removes_the_folders_of_sessions_gone_for_the_grace_period(tmp_path):
    from ui.uploads import Folder, Janitor

    live = {"a", "b"}
    janitor = Janitor(lambda sid: sid in live, grace=20)
    folders = {sid: Folder(tmp_path) for sid in ("a", "b")}
    for sid, folder in folders.items():
        janitor.watch(sid, folder)
    assert janitor.sweep(now=0) == []
    live.discard("a")  # tab a closed
    live.discard("b")  # tab b lost its connection ...
    assert janitor.sweep(now=10) == []  # within the grace period both stay
    live.add("b")  # ... and b came back
    assert janitor.sweep(now=30) == [folders["a"].path]
    assert not folders["a"].path.exists() and folders["b"].path.is_dir()
    assert janitor.sweep(now=100) == []


def test_the_folders_of_dead_server_processes_are_removed(tmp_path):
    from ui.uploads import PREFIX, remove_dead_folders

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f"{PREFIX}{dead.pid}-abc").mkdir()
    (tmp_path / f"{PREFIX}{os.getpid()}-abc").mkdir()  # this process: alive
    (tmp_path / f"{PREFIX}old-style").mkdir()  # no pid: left alone
    assert remove_dead_folders(tmp_path) == [tmp_path / f"{PREFIX}{dead.pid}-abc"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{PREFIX}{os.getpid()}-abc", f"{PREFIX}old-style"])


def test_a_method_that_needs_calibration_is_refused_for_weights_without_code(tmp_path, monkeypatch):
    calib = Method("calib", "needs calibration data", quantize_demo, DemoConfig, needs_calibration=True)
    monkeypatch.setitem(qcore.METHODS, "calib", calib)
    at = upload(start(), weights(tmp_path))
    at.selectbox(key="method").set_value("calib").run(timeout=TIMEOUT)
    assert not at.exception
    assert "calib needs calibration data" in at.warning[0].value
    assert at.button(key="q_run").disabled
    at.selectbox(key="method").set_value("int8").run(timeout=TIMEOUT)
    assert not at.button(key="q_run").disabled and not at.warning


def test_sensitivity_heatmap_is_rtn_at_each_width_then_e8p(tmp_path):
    from qcore.formats.readers import read_weights

    path = weights(tmp_path)
    at = upload(start(), path)
    at.button(key="q_sens_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    heat = chart_json(at, "q_sens_chart")["data"][0]
    model = read_weights(path)
    for j, bits in enumerate(cache.SENSITIVITY_BITS):
        rec = qcore.run(model, "rtn", {"bits": bits, "group_size": 128}).record
        assert [row[j] for row in heat["z"]] == [la["sqnr_db"] for la in rec["layers"]]
    assert heat["y"] == [la["name"] for la in rec["layers"]]
    assert heat["x"] == ["2-bit", "3-bit", "4-bit", "8-bit", "2-bit vector (e8p)"]
    e8p = qcore.run(model, "e8p").record
    assert [row[-1] for row in heat["z"]] == [la["sqnr_db"] for la in e8p["layers"]]
    at.button_group(key="q_sens_metric").set_value("weight_cosine").run(timeout=TIMEOUT)
    heat = chart_json(at, "q_sens_chart")["data"][0]
    assert [row[-2] for row in heat["z"]] == [la["weight_cosine"] for la in rec["layers"]]


def test_a_server_folder_file_runs_like_the_cli(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    folder.mkdir()
    path = weights(folder, name="served.safetensors")
    monkeypatch.setenv("QCORE_WEIGHTS_DIR", str(folder))
    expected = cli_record("--weights", str(path), "--method", "int8")
    at = start()
    assert at.radio(key="source").options == ["Preset", "Upload a file", "Server folder"]
    at.radio(key="source").set_value("server").run(timeout=TIMEOUT)
    assert at.selectbox(key="server_file").options == ["served.safetensors"]
    at.selectbox(key="method").set_value("int8")
    at.button(key="q_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    assert metrics(at)["Weight cosine"] == fmt_cos(expected["weight_cosine"])
    assert metrics(at)["Compression ratio"] == f"{expected['compression_ratio']:.2f}x"
    monkeypatch.delenv("QCORE_WEIGHTS_DIR")
    assert start().radio(key="source").options == ["Preset", "Upload a file"]  # off by default


# ---- task metrics ----------------------------------------------------------------------------------------------


def task_model():
    """A preset-like MLP whose task reports an agreement rate (higher is better) and a logit MSE (lower)."""
    from qcore.models.presets import mlp_forward

    g = torch.Generator().manual_seed(3)
    tensors = {"fc1.weight": torch.randn(64, 16, generator=g) * 0.25, "fc1.bias": torch.zeros(64),
               "fc2.weight": torch.randn(10, 64, generator=g) * 0.125, "fc2.bias": torch.zeros(10)}  # fmt: skip
    x = torch.randn(256, 16, generator=g)

    def task(ref, got):
        a, b = mlp_forward(ref, x), mlp_forward(got, x)
        return {"agree": float((a.argmax(-1) == b.argmax(-1)).double().mean()), "agree_ref": 1.0,
                "logit_mse": float(((a - b) ** 2).mean())}  # fmt: skip

    return qcore.Model("taskdemo", tensors, "a test MLP with a task", mlp_forward, x, x, task, head=("fc2.weight",))


def test_task_metrics_become_cards_and_a_compare_axis(monkeypatch):
    from ui import models

    model, load = task_model(), models.load_model
    monkeypatch.setitem(qcore.PRESETS, "taskdemo", 16)
    monkeypatch.setattr(models, "load_model", lambda name: model if name == "taskdemo" else load(name))
    at = start()
    at.selectbox(key="preset").set_value("taskdemo")
    at.button(key="q_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    expected = qcore.run(model, "int2").record["task"]
    shown = {m.label: m for m in at.metric}
    assert shown["agree"].value == f"{expected['agree']:.4f}" and "FP16 1.0000" in shown["agree"].proto.delta
    assert shown["Logit MSE (logit²)"].value == f"{expected['logit_mse']:.4f}"  # a key qcore/labels.json knows
    go(at, "compare")
    at.button(key="c_run").click().run(timeout=TIMEOUT)
    axes = at.button_group(key="c_y").options
    assert "agree (higher is better)" in axes and "Logit MSE (logit², lower is better)" in axes
    at.button_group(key="c_y").set_value("task.logit_mse").run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    best = table.loc[table["Logit MSE (logit², lower is better)"].idxmin()]
    assert best["On front"]  # the lowest error is on the front: smaller wins for this metric
    assert chart_json(at, "c_pareto_chart")["layout"]["yaxis"]["title"]["text"] == "Logit MSE (logit², lower is better)"


def test_report_sets_two_bit_methods_side_by_side():
    at = start()
    go(at, "report")
    at.multiselect(key="r_presets").set_value(["small", "medium"])
    at.toggle(key="r_two_bit").set_value(True)
    at.button(key="r_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    report = at.markdown[-1].value
    assert "## Two bits per weight, side by side" in report and "Vector 2-bit" in report
    assert "--methods int8,int2,gptq:bits=2:group_size=64,e8p" in " ".join(c.value for c in at.caption)
