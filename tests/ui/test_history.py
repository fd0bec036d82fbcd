"""Run history and the URL through AppTest: three runs make three rows (a repeat adds none), the CSV carries the
records' figures, two runs side by side draw both, and the URL a run leaves reopens the same selection in a fresh
session."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
from streamlit.testing.v1 import AppTest

from qcore import ModelRef, RunSpec
from qcore.api.runs import run_spec
from qcore.format import fmt_ratio
from qcore.labels import metric_label
from tests.conftest import ROOT
from tests.ui.test_labels import known_identifiers, raw_in, shown
from ui import history

TIMEOUT = 300  # seconds; the machine is shared (never asserted as a speed)
RUNS = [  # (preset, method, options set in the sidebar): three methods, one model with task metrics
    ("small", "int8", {}),
    ("small", "rtn", {"bits": 3, "group_size": 32}),
    ("digits-small", "int2", {}),
]


def start(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    at.run()
    assert not at.exception, at.exception
    return at


def go(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def quantize(at: AppTest, preset: str, method: str, options: dict) -> None:
    at.selectbox(key="preset").set_value(preset)
    at.selectbox(key="method").set_value(method).run()
    for name, value in options.items():
        widget = (
            at.selectbox(key=f"opt_{method}_{name}") if name == "bits" else at.number_input(key=f"opt_{method}_{name}")
        )
        widget.set_value(value)
    at.button(key="q_run").click().run()
    assert not at.exception, at.exception
    assert at.metric, "the run drew no figures"


@pytest.fixture(scope="module")
def ran() -> AppTest:
    """A session with the three runs, then the first one again (from the cache: no new row)."""
    at = start()
    for preset, method, options in RUNS:
        quantize(at, preset, method, options)
    quantize(at, *RUNS[0])
    return go(at, "history")


def entries(at: AppTest) -> list[history.Entry]:
    return at.session_state[history.HISTORY_KEY]


def test_three_runs_make_three_rows(ran):
    table = next(d.value for d in ran.dataframe if "Command line" in d.value.columns)
    assert list(table["Run"]) == [1, 2, 3]
    assert list(table["Model"]) == [p for p, _, _ in RUNS] and list(table["Method"]) == [m for _, m, _ in RUNS]
    assert table["Options"][1] == "Code width 3 bits, Group size 32 weights, Symmetric off, Clipping search off, " \
                                  "Incoherence rotation (Hadamard) off"  # fmt: skip
    assert table["Command line"][1] == "python -m qcore run --preset small --method rtn --bits 3 --group-size 32 --json"
    top1 = metric_label("top1").heading("en")
    assert math.isnan(table[top1][0]) and 0 < table[top1][2] <= 1  # only the classifier has task metrics


def test_the_csv_carries_each_record_in_full(ran):
    runs = entries(ran)
    rows = list(csv.DictReader(io.StringIO(history.csv_bytes(history.frame(runs)).decode("utf-8-sig"))))
    assert len(rows) == 3
    for row, e in zip(rows, runs, strict=True):
        rec = e.record
        assert (row["Model"], row["Method"]) == (e.spec.model.label, e.spec.method)
        for header, key in (("Ratio", "compression_ratio"), ("bpw", "bpw"), ("Weight cosine", "weight_cosine"),
                            ("SQNR (dB)", "sqnr_db"), ("Time (s)", "quant_seconds")):  # fmt: skip
            assert float(row[header]) == rec[key], header  # unformatted: every digit
        assert row["Verdict"] == rec["quality"]
        for key, value in (rec.get("task") or {}).items():
            assert float(row[metric_label(key).heading("en")]) == value
    assert rows[0][metric_label("top1").heading("en")] == ""  # blank where the model has no such metric
    # the page's records are qcore's: the same figures from a run outside the app
    preset, method, options = RUNS[1]
    ref = run_spec(RunSpec.make(ModelRef("preset", preset), method, options), keep=False).record
    for header, key in (("Ratio", "compression_ratio"), ("bpw", "bpw"), ("Weight cosine", "weight_cosine")):
        assert math.isclose(float(rows[1][header]), ref[key], rel_tol=1e-9), header


def test_two_runs_side_by_side_draw_both(ran):
    ran.selectbox(key="h_a").set_value(1)
    ran.selectbox(key="h_b").set_value(2).run()
    assert not ran.exception, ran.exception
    kpis = next(d.value for d in ran.dataframe if "Figure" in d.value.columns)
    assert list(kpis.columns) == ["Figure", "#1", "#2"]
    ratio = kpis[kpis["Figure"] == "Compression ratio"].iloc[0]
    runs = entries(ran)
    assert (ratio["#1"], ratio["#2"]) == tuple(fmt_ratio(e.record["compression_ratio"]) for e in runs[:2])
    specs = [json.loads(c.proto.spec) for c in ran.get("plotly_chart")]
    pair = next(s for s in specs if "per layer" in s["layout"]["title"]["text"])
    assert [tr["name"] for tr in pair["data"]] == ["#1", "#2"]
    for tr, e in zip(pair["data"], runs[:2], strict=True):
        assert tr["x"] == [la["weight_cosine"] for la in e.record["layers"]]  # layers down the y axis
        assert tr["y"] == [la["name"] for la in e.record["layers"]]
    hists = [s for s in specs if s["data"] and s["data"][0].get("type") == "histogram"]
    assert len(hists) == 2
    assert [len(h["layout"]["shapes"]) for h in hists] == [256, 8]  # int8's levels beside rtn 3-bit's
    layers = next(d.value for d in ran.dataframe if "Weight cosine · #1" in d.value.columns)
    assert list(layers["SQNR (dB) · #2"]) == [la["sqnr_db"] for la in runs[1].record["layers"]]


def test_the_page_shows_no_raw_identifier(ran):
    known = known_identifiers()
    for lang in ("en", "zh"):
        ran.radio(key="lang").set_value(lang).run()
        assert not ran.exception, ran.exception
        hits = {h for text in shown(ran) for h in raw_in(text, known)}
        assert not hits, (lang, hits)
    ran.radio(key="lang").set_value("en").run()


def test_a_link_reopens_the_same_selection_in_a_fresh_session():
    at = start()
    at.selectbox(key="preset").set_value("medium")
    at.selectbox(key="method").set_value("hqq").run()
    at.number_input(key="opt_hqq_iters").set_value(5)
    at.toggle(key="opt_hqq_optimize_scale").set_value(True)
    at.toggle(key="pol_head").set_value(False).run()
    at.button(key="q_run").click().run()
    link = dict(at.query_params)
    assert link == {"model": "medium", "method": "hqq", "iters": "5", "optimize_scale": "1", "head": "0"}
    fresh = start(link)
    assert fresh.selectbox(key="preset").value == "medium"
    assert fresh.selectbox(key="method").value == "hqq"
    assert fresh.number_input(key="opt_hqq_iters").value == 5
    assert fresh.toggle(key="opt_hqq_optimize_scale").value is True
    assert fresh.toggle(key="pol_head").value is False
    assert not fresh.warning
    assert dict(fresh.query_params) == link  # and it writes the same link back


def test_a_bad_link_opens_the_default_with_a_warning():
    at = start({"model": "huge", "method": "rtn", "bits": "7", "group_size": "64"})
    assert at.selectbox(key="preset").value == "large"
    assert at.selectbox(key="method").value == "rtn" and at.number_input(key="opt_rtn_group_size").value == 64
    warning = " ".join(w.value for w in at.warning)
    assert "huge" in warning and "bits=7" in warning
    assert dict(at.query_params) == {"model": "large", "method": "rtn", "group_size": "64"}
    at.number_input(key="opt_rtn_group_size").set_value(128).run()  # the note goes once the selection changes
    assert not at.warning


def test_an_empty_history_points_to_quantize():
    at = go(start(), "history")
    assert at.info and "No runs yet" in at.info[0].value
    links = at.get("page_link")
    assert [link.proto.label for link in links] == ["Go to Quantize"] and links[0].proto.page_script_hash
