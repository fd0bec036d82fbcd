"""The CLI contract: JSON on stdout only, progress on stderr, one-line errors with a non-zero exit."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from qcore import ModelRef, RunSpec
from qcore.api import runs
from qcore.cli import build_parser, main, options_of
from qcore.formats.budget import BUDGET_ENV
from qcore.methods.registry import METHODS
from tests.support import nondefault_values

REPORT_INT2_COSINE = {"small": 0.9142, "medium": 0.8713, "large": 0.8357}
PARAMS = {"small": 10_976, "medium": 172_928, "large": 2_756_096}


def qcore(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qcore", *args], capture_output=True, text=True, timeout=300,
        env=None if env is None else {**os.environ, **env},
    )  # fmt: skip


@pytest.fixture(scope="module")
def report_rows():
    proc = qcore("report", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["rows"]


def test_report_has_six_rows_with_the_reference_params(report_rows):
    assert [(r["source"], r["method"]) for r in report_rows] == [
        (p, m) for p in ("small", "medium", "large") for m in ("int8", "int2")
    ]
    for r in report_rows:
        assert r["params"] == PARAMS[r["source"]]


def test_report_records_have_the_contract_keys(report_rows):
    keys = {"source", "params", "quantized_params", "method", "bits", "group_size", "fp16_bytes", "quantized_bytes",
            "compression_ratio", "bpw", "weight_cosine", "sqnr_db", "output_cosine", "quant_seconds", "memory_saving"}  # fmt: skip
    for r in report_rows:
        assert keys <= set(r)


def test_int8_cosine_is_near_one_but_not_rounded_to_one(report_rows):
    for r in report_rows:
        if r["method"] == "int8":
            assert 0.9999 <= r["weight_cosine"] < 1.0


def test_int2_cosine_reproduces_the_reference_within_002(report_rows):
    for r in report_rows:
        if r["method"] == "int2":
            assert abs(r["weight_cosine"] - REPORT_INT2_COSINE[r["source"]]) <= 0.02, r["source"]


def test_int2_cosine_falls_with_size(report_rows):
    cos = [r["weight_cosine"] for r in report_rows if r["method"] == "int2"]
    assert cos[0] > cos[1] > cos[2]


def test_large_ratios_with_codec_off(report_rows):
    large = {r["method"]: r for r in report_rows if r["source"] == "large"}
    assert large["int8"]["compression_ratio"] >= 1.95
    assert 7.0 <= large["int2"]["compression_ratio"] <= 8.0
    for r in large.values():
        assert r["breakdown"]["codec"] == "none"
        assert r["breakdown"]["codec_gain_bytes"] == 0
        assert r["compression_ratio"] <= r["theoretical_ratio"]
        assert r["zstd_bytes"] < r["quantized_bytes"]  # the codec's gain, reported on its own


def test_small_file_is_dominated_by_overhead(report_rows):
    small = {r["method"]: r for r in report_rows if r["source"] == "small"}
    large = {r["method"]: r for r in report_rows if r["source"] == "large"}
    assert small["int2"]["metadata_share"] > 0.4
    assert large["int2"]["metadata_share"] < 0.05
    b = small["int2"]["breakdown"]
    assert b["payload_bytes"] + b["metadata_bytes"] + b["passthrough_bytes"] + b["container_bytes"] == b["file_bytes"]


def test_run_json_is_one_document_and_progress_goes_to_stderr():
    proc = qcore("run", "--preset", "small", "--method", "int2", "--json")
    assert proc.returncode == 0
    rec = json.loads(proc.stdout)
    assert rec["source"] == "small" and rec["method"] == "int2"
    assert "small int2" in proc.stderr  # the progress bar


def test_clipped_groupwise_int2_beats_092_on_large():
    proc = qcore("run", "--preset", "large", "--method", "rtn", "--bits", "2", "--group-size", "64", "--clip", "--json")
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(proc.stdout)
    assert rec["weight_cosine"] >= 0.92
    assert rec["group_size"] == 64 and rec["bits"] == 2


def test_run_writes_the_artifact(tmp_path):
    out = tmp_path / "a.parquet"
    proc = qcore("run", "--preset", "small", "--method", "rtn", "--bits", "3", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size == json.loads(proc.stdout)["quantized_bytes"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "--preset", "small", "--method", "nope"), "unknown method 'nope'"),
        (("run", "--preset", "small", "--method", "rtn", "--bits", "5"), "bits must be one of 2, 3, 4, 8; got 5"),
        (("run", "--preset", "huge", "--method", "int8"), "unknown preset 'huge'"),
        (("run", "--preset", "small", "--method", "int8", "--bits", "4"), "int8' fixes bits=8"),
        (("run", "--weights", "/no/such/file.safetensors", "--method", "int8"), "no such file"),
        (("report", "--methods", "int8,bogus"), "unknown method 'bogus'"),
        (("extrapolate", "--params", "0", "--method", "int2"), "--params must be a positive whole number"),
        (("extrapolate", "--arch", "GPT-5", "--method", "int2"), "unknown architecture 'GPT-5'"),
        (("run", "--preset", "small", "--method", "rtn", "--iters", "5"), "method 'rtn' has no option iters"),
        (("run", "--preset", "small", "--method", "hqq", "--lp-norm", "x"), "--lp-norm: invalid float value"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message):
    proc = qcore(*args, "--json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ("lots", "QCORE_MEMORY_BUDGET='lots' is not a size; give bytes or a size such as 512M or 4G"),
        ("20K", "m.safetensors: decodes to 32.0 KiB (its largest tensor 'w', read one at a time), over this "
                "server's 20.0 KiB memory budget (QCORE_MEMORY_BUDGET)"),
    ],
)  # fmt: skip
def test_the_memory_budget_refuses_with_one_line(tmp_path, budget, message):
    save_file({"w": torch.randn(64, 64)}, tmp_path / "m.safetensors")
    proc = qcore("run", "--weights", str(tmp_path / "m.safetensors"), "--method", "int8", env={BUDGET_ENV: budget})
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"error: {message}"]


def test_every_registry_option_is_a_flag_and_a_specs_line_parses_back():
    """Everything the sidebar can set, the CLI takes: the line a spec prints parses to the same config."""
    parser = build_parser()
    checked = 0
    for name, method in METHODS.items():
        free = [o for o in method.options() if not o.fixed]
        defaults = {o.name: o.default for o in free}
        variants = [defaults] + [{**defaults, o.name: c} for o in free for c in nondefault_values(method, o)]
        for opts in variants:
            argv = RunSpec.make(ModelRef("preset", "small"), name, opts).argv()
            args = parser.parse_args(argv[3:])
            assert args.method == name
            assert method.make_config(**options_of(args)) == method.make_config(**opts), argv
            checked += 1
    assert checked > 2 * len(METHODS)


def test_method_specific_flags_reach_the_config():
    proc = qcore("run", "--preset", "small", "--method", "gptq", "--no-act-order", "--damp", "0.05", "--json")
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(proc.stdout)
    assert rec["config"]["act_order"] is False and rec["config"]["damp"] == 0.05
    proc = qcore("run", "--preset", "small", "--method", "hqq", "--bits", "2", "--iters", "0", "--json")
    hqq0 = json.loads(proc.stdout)
    proc = qcore("run", "--preset", "small", "--method", "rtn", "--bits", "2", "--group-size", "64", "--json")
    assert hqq0["config"]["iters"] == 0
    assert hqq0["weight_cosine"] >= json.loads(proc.stdout)["weight_cosine"]  # 0 iters: never worse than RTN


def test_methods_lists_the_registry():
    proc = qcore("methods", "--json")
    names = [m["name"] for m in json.loads(proc.stdout)["methods"]]
    assert {"int8", "int2", "rtn"} <= set(names)


def test_report_out_writes_markdown_csv_and_artifacts(tmp_path):
    proc = qcore("report", "--presets", "small,medium", "--out", str(tmp_path), "--lang", "zh")
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "report.zh.md").read_text(encoding="utf-8")
    assert "量化方法缩放分析报告" in md
    csv = (tmp_path / "report.csv").read_text().splitlines()
    assert len(csv) == 1 + 4
    assert sorted(p.name for p in (tmp_path / "artifacts").iterdir()) == [
        "medium-int2.parquet", "medium-int8.parquet", "small-int2.parquet", "small-int8.parquet"]  # fmt: skip


def test_extrapolate_an_architecture_with_fp16_embeddings():
    proc = qcore("extrapolate", "--arch", "Qwen3-0.6B", "--method", "int2", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["params"] == 596_049_920
    assert doc["params_by_kind"]["embedding"] == 151_936 * 1024
    assert 2.0 < doc["compression_ratio"] < 4.0  # far below 8x: the FP16 embedding dominates
    assert doc["bytes_by_kind"]["embedding"] > doc["bytes_by_kind"]["mlp"]
    acc = doc["accuracy"]
    assert acc["extrapolated"] and acc["weight_cosine_low"] <= acc["weight_cosine"] <= acc["weight_cosine_high"]


def test_extrapolate_flags_a_context_longer_than_the_models_own():
    proc = qcore("extrapolate", "--arch", "LLaMA-7B", "--method", "int8", "--no-accuracy")
    assert proc.returncode == 0, proc.stderr
    assert "KV cache: 2.00 GiB at 4096 tokens x 1 in 16-bit (beyond LLaMA-7B's 2,048-token context)" in proc.stdout
    proc = qcore("extrapolate", "--arch", "Llama-2-7B", "--method", "int8", "--no-accuracy", "--json")
    kv = json.loads(proc.stdout)["kv_cache"]
    assert kv["context"] == kv["max_context"] == 4096  # at the limit: nothing to flag
    proc = qcore("extrapolate", "--arch", "Llama-2-7B", "--method", "int8", "--no-accuracy")
    assert "KV cache: 2.00 GiB at 4096 tokens x 1 in 16-bit\n" in proc.stdout


def test_extrapolate_a_parameter_count():
    proc = qcore("extrapolate", "--params", "7e9", "--method", "int8", "--no-accuracy", "--json")
    doc = json.loads(proc.stdout)
    assert abs(doc["params"] - 7e9) / 7e9 < 0.05
    assert 1.9 < doc["compression_ratio"] < 2.0


def test_run_streams_without_holding_the_quantized_model(monkeypatch, capsys):
    """`run` needs only the record: it asks the pipeline not to keep tensors (the 1B bench measures the memory)."""
    seen = {}
    real = runs.run

    def spy(*args, **kw):
        seen.update(kw)
        res = real(*args, **kw)
        seen["held"] = len(res.quantized)
        return res

    monkeypatch.setattr(runs, "run", spy)
    assert main(["run", "--preset", "small", "--method", "int8", "--json"]) == 0
    assert seen["keep"] is False and seen["held"] == 0
    assert json.loads(capsys.readouterr().out)["params"] == PARAMS["small"]


def test_progress_leaves_an_error_on_a_line_of_its_own(monkeypatch):
    """On a terminal the bar is cleared before the error; elsewhere the first line comes after a finished step."""
    import io

    from qcore import cli

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, lines_before in ((Terminal(), 0), (io.StringIO(), 1)):
        monkeypatch.setattr(sys, "stderr", stream)
        bar = cli.progress_bar("m rtn")
        bar(0, 2, "a.weight")
        bar(1, 2, "b.weight")
        cli.error_line("error: b.weight has 1 NaN")
        shown = stream.getvalue().split("\r")[-1] if isinstance(stream, Terminal) else stream.getvalue()
        lines = shown.splitlines()
        assert lines[-1] == "error: b.weight has 1 NaN" and len(lines) == lines_before + 1, lines
        assert "0/2" not in stream.getvalue() or isinstance(stream, Terminal)


def test_a_policy_that_selects_no_tensor_is_refused_not_reported_as_lossless(capsys):
    from qcore.cli import main

    capsys.readouterr()
    assert main(["run", "--preset", "large", "--method", "rtn", "--include", "no_such_layer"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "selects no tensor to quantize" in lines[0]
    assert "3 not matching the include pattern" in lines[0] and "nothing would change" in lines[0]
