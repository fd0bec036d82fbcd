"""Extrapolate's GPU what-if through AppTest: LLaMA-7B int2 on an RTX 4090 at 4096 tokens fits, with qcore's
tokens/s bound on the page and in the page's command line; the tables download as CSV; and the progress bar's label
names the item being computed, not the one before it."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

from qcore.analysis.archs import get_arch
from qcore.analysis.gpus import GPUS, gpu_what_if
from qcore.analysis.sizing import arch_sizes
from qcore.api.specs import EXTRAPOLATE_POLICY, MethodSpec, Target
from qcore.format import fmt_bytes
from ui import extrap

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 300  # seconds; the machine is shared (never asserted as a speed)


def llama_int2_on(gpu: str, lang: str = "en") -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    if lang != "en":
        at.radio(key="lang").set_value(lang).run()
    at.switch_page("app_pages/extrapolate.py").run()
    at.multiselect(key="x_archs").set_value(["LLaMA-7B"])
    at.multiselect(key="x_methods").set_value(["int2"])
    at.button(key="x_run").click().run()
    at.selectbox(key="x_gpu").set_value(gpu).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def memory_row(at: AppTest, weights: str):
    memory = next(d.value for d in at.dataframe if "KV cache" in d.value.columns or "KV 缓存" in d.value.columns)
    return memory[memory.iloc[:, 1] == weights].iloc[0]  # column 1: which weights


def test_llama7b_int2_on_an_rtx4090_fits_and_shows_qcores_upper_bound():
    arch = get_arch("LLaMA-7B")
    sizes = arch_sizes(arch, "int2", {}, EXTRAPOLATE_POLICY)
    expected = gpu_what_if(arch, sizes["quantized_bytes"], sizes["bytes_by_kind"], GPUS["RTX 4090"], 4096)
    at = llama_int2_on("RTX 4090")
    row = memory_row(at, "int2")
    assert row["RTX 4090 (24 GiB)"] == f"✓ {fmt_bytes(expected['headroom_bytes'])} free"
    assert row["Decode (tokens/s, upper bound)"] == expected["decode_tokens_per_s"]
    assert round(row["Decode (tokens/s, upper bound)"], 2) == 264.99  # 1008 GB/s / (1.54 GiB weights + 2 GiB KV)
    assert row["Prefill (tokens/s, estimate)"] == expected["prefill_tokens_per_s"]
    captions = " ".join(c.value for c in at.caption)
    assert "**upper bound**" in captions and "**RTX 4090**: 24 GiB, 1008 GB/s, 165.2 TFLOPS" in captions
    fp16 = memory_row(at, "FP16")  # 12.55 GiB of weights still fit in 24 GiB, 3.8x slower
    assert fp16["RTX 4090 (24 GiB)"].startswith("✓") and fp16["Decode (tokens/s, upper bound)"] < 70

    (line,) = at.code[0].value.splitlines()
    assert line == "python -m qcore extrapolate --arch LLaMA-7B --method int2 --gpu 'RTX 4090' --json"
    argv = shlex.split(line)  # the line as a shell would run it
    out = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["gpu"]["decode_tokens_per_s"] == row["Decode (tokens/s, upper bound)"]


def test_a_card_too_small_says_so_and_gives_no_speed():
    at = llama_int2_on("T4")
    at.number_input(key="x_context").set_value(65_536).run()  # 32 GiB of FP16 KV cache
    row = memory_row(at, "int2")
    assert row["T4 (16 GiB)"].startswith("✗") and row["T4 (16 GiB)"].endswith("short")
    assert row[["Decode (tokens/s, upper bound)", "Prefill (tokens/s, estimate)"]].isna().all()
    assert "--context 65536 --gpu T4 --json" in at.code[0].value


def test_the_tables_download_as_csv_and_the_labels_are_chinese_in_chinese():
    at = llama_int2_on("RTX 4090")
    buttons = {b.proto.label for b in at.get("download_button")}
    assert {"Sizes (CSV)", "Accuracy (CSV)", "Memory (CSV)"} <= buttons
    zh = llama_int2_on("RTX 4090", lang="zh")
    assert {"大小（CSV）", "精度（CSV）", "内存（CSV）"} <= {b.proto.label for b in zh.get("download_button")}
    row = memory_row(zh, "int2")
    assert row["RTX 4090（24 GiB）"].startswith("✓") and row["解码（token/s，上限）"] > 0


def test_the_progress_label_names_the_item_being_computed(monkeypatch):
    """While an item runs, the last label reported names it (not the item that finished before it)."""
    seen: list[str] = []
    labels: list[str] = []
    real_fit, real_extrapolate = extrap.fit_accuracy, extrap.qcore_extrapolate

    def fit(method, options, progress=None):
        seen.append(f"fit {method}: {labels[-1]}")
        return real_fit(method, options, progress=progress)

    def size(spec, fit=None):
        seen.append(f"size {spec.target.value} {spec.method}: {labels[-1]}")
        return real_extrapolate(spec, fit=fit)

    monkeypatch.setattr(extrap, "fit_accuracy", fit)
    monkeypatch.setattr(extrap, "qcore_extrapolate", size)
    job = extrap.ExtrapolationRun(
        (Target("catalog", "Qwen3-0.6B"), Target("catalog", "Llama-3.2-1B")),
        (MethodSpec("int8"), MethodSpec("rtn", (("bits", 3), ("group_size", 32)))), EXTRAPOLATE_POLICY,
    )  # fmt: skip
    extrap.accuracy_fit.clear()
    extrap.extrapolate.clear()
    extrap.extrapolate(job, _progress=lambda done, total, what: labels.append(what))
    assert seen == [
        "fit int8: fitting accuracy: int8",
        "fit rtn: fitting accuracy: rtn 3b g32",
        "size Qwen3-0.6B int8: sizing Qwen3-0.6B · int8",
        "size Qwen3-0.6B rtn: sizing Qwen3-0.6B · rtn 3b g32",
        "size Llama-3.2-1B int8: sizing Llama-3.2-1B · int8",
        "size Llama-3.2-1B rtn: sizing Llama-3.2-1B · rtn 3b g32",
    ]
    assert "fitting accuracy: int8 · int8 on medium" in labels  # the fit's own steps name the preset it is on
    assert labels[-1] == "done"


def test_a_context_beyond_the_models_own_is_flagged_and_still_sized():
    at = llama_int2_on("RTX 4090")  # LLaMA-7B was built for 2,048 tokens; the page's default context is 4,096
    (warning,) = [w.value for w in at.warning]
    assert "4,096 tokens" in warning and "LLaMA-7B (2,048)" in warning
    kv = memory_row(at, "int2")["KV cache"]
    at.number_input(key="x_context").set_value(2048).run()
    assert not at.warning and not at.exception
    assert memory_row(at, "int2")["KV cache"] != kv  # sized at each context: 2.00 GiB, then 1.00 GiB
