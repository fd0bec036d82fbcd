"""The command line a page shows, run in a shell, prints the page's own figures: for every method, with every
option the sidebar can set away from its default, on the Quantize page and on the Extrapolate page."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from qcore import METHODS, get_method
from qcore.format import fmt_bytes, fmt_cos, fmt_db, fmt_ratio
from tests.conftest import ROOT
from tests.support import nondefault_options
from ui import cache, extrap

TIMEOUT = 300
MODEL = "digits-medium"  # it has code (gptq calibrates), a loss (seq trains) and room for mixed's 3-bit rows
TIMING = {"quant_seconds", "threads", "artifact"}


def shell(line: str) -> dict:
    """Run a page's line as a user would paste it: in bash, from the repository, with this Python first on PATH."""
    assert line.startswith("python -m qcore "), line
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def with_options(method: str) -> AppTest:
    """The app with MODEL, `method`, and every free option of the method set in the sidebar away from its default."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.selectbox(key="preset").set_value(MODEL)
    at.selectbox(key="method").set_value(method).run()
    options = nondefault_options(get_method(method))
    for opt in get_method(method).options():
        if opt.name in options:
            key = f"opt_{method}_{opt.name}"
            widget = (
                at.selectbox(key=key)
                if opt.choices
                else at.toggle(key=key)
                if opt.type == "bool"
                else at.number_input(key=key)
            )
            widget.set_value(options[opt.name])
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def sidebar_options(method: str) -> dict:
    """What with_options set: every free option, away from its default where the method allows."""
    m = get_method(method)
    return {**{o.name: o.default for o in m.options() if not o.fixed}, **nondefault_options(m)}


@pytest.mark.parametrize("method", list(METHODS))
def test_the_quantize_pages_line_prints_its_figures(method):
    at = with_options(method)
    at.button(key="q_run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    spec = at.session_state["q_last"]
    assert dict(spec.options) == sidebar_options(method)
    line = at.code[0].value
    cli = shell(line)
    page = cache.quantize(spec).record  # the cached record the page drew
    assert {k: v for k, v in cli.items() if k not in TIMING} == json.loads(
        json.dumps({k: v for k, v in page.items() if k not in TIMING})
    )
    shown = {m.label: m.value for m in at.metric}
    assert shown["Compression ratio"] == fmt_ratio(cli["compression_ratio"])
    assert shown["Weight cosine"] == fmt_cos(cli["weight_cosine"])
    assert shown["SQNR"] == fmt_db(cli["sqnr_db"])
    assert shown["Output cosine"] == fmt_cos(cli["output_cosine"])
    assert shown["Memory saved"] == fmt_bytes(cli["saved_bytes"])


@pytest.mark.parametrize("method", list(METHODS))
def test_the_extrapolate_pages_line_prints_its_figures(method):
    at = with_options(method)
    at.switch_page("app_pages/extrapolate.py").run()
    at.multiselect(key="x_archs").set_value(["Qwen3-0.6B"])
    at.multiselect(key="x_methods").set_value([method])
    at.button(key="x_run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (row,) = extrap.extrapolate(at.session_state["x_last"])["rows"]
    assert dict(row["spec"].options) == sidebar_options(method)
    (line,) = at.code[0].value.splitlines()
    cli = shell(line)
    for key in ("params", "fp16_bytes", "quantized_bytes", "compression_ratio", "bpw", "bytes_by_kind", "breakdown",
                "kv_cache", "accuracy", "all_quantized_ratio"):  # fmt: skip
        assert cli.get(key) == json.loads(json.dumps(row[key])), key  # no fit (mixed on tiny presets): neither has one
