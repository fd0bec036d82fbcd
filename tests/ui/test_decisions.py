"""Deciding on a recipe from the dashboard: the verdict follows the model's own metrics, Run is off (with the reason
beside it) when a run could not mean anything, Compare offers only axes that can rank recipes, and a run's status
is on screen before qcore reports anything."""

from __future__ import annotations

import threading
import time

import pytest
from streamlit.testing.v1 import AppTest

from qcore import Policy, load_model
from qcore.measure.feasible import mixed_floor_bpw
from qcore.methods.mixed import MixedConfig
from tests.conftest import ROOT
from ui import cache, tables
from ui.i18n import t

TIMEOUT = 120  # seconds; the machine is shared, so be generous (never asserted as a speed)


def start() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run(timeout=TIMEOUT)
    assert not at.exception
    return at


def choose(at: AppTest, preset: str, method: str) -> AppTest:
    at.selectbox(key="preset").set_value(preset)
    at.selectbox(key="method").set_value(method).run(timeout=TIMEOUT)
    assert not at.exception
    return at


def card(at: AppTest, label: str):
    return next(m for m in at.metric if m.label == label)


def test_charlm_mixed_at_2_75_is_judged_on_its_perplexity_not_its_weight_cosine():
    at = choose(start(), "charlm", "mixed")
    at.number_input(key="opt_mixed_target_bpw").set_value(2.75)
    at.button(key="q_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    rec = cache.quantize(at.session_state["q_last"])  # the cached record the page drew
    assert rec.record["quality_basis"] == "perplexity" and rec.record["weight_cosine"] > 0.95  # cosine alone: excellent
    cosine = card(at, "Weight cosine")
    assert cosine.proto.delta == "poor · judged on perplexity, KL, same-top"  # perplexity +19%, same-top 78%
    assert "llama.cpp" in cosine.proto.help and "≤ 1% / ≤ 5% / ≤ 15%" in cosine.proto.help  # the edges it read
    ppl = rec.record["quality_evidence"]["ppl_increase"]["value"]
    assert f"{ppl:+.1%}" in cosine.proto.help
    ratio = card(at, "Compression ratio")
    whole, codes = rec.record["theoretical_file_ratio"], rec.record["theoretical_ratio"]
    assert ratio.proto.delta == f"theoretical {whole:.2f}x whole file · {codes:.2f}x codes only"


def test_an_include_pattern_matching_nothing_turns_run_off_and_says_why():
    at = start()
    at.text_input(key="pol_include").input("no_such_tensor").run(timeout=TIMEOUT)
    assert at.button(key="q_run").disabled
    why = [w.value for w in at.warning if "selects no tensor" in w.value]
    assert why and "FP16 (not included) ×3" in why[0]  # the large preset's three weights
    at.text_input(key="pol_include").input("fc").run(timeout=TIMEOUT)
    assert not at.button(key="q_run").disabled
    assert not any("selects no tensor" in w.value for w in at.warning)


def test_a_mixed_target_below_the_models_floor_turns_run_off_before_anything_runs():
    at = choose(start(), "charlm", "mixed")
    at.number_input(key="opt_mixed_target_bpw").set_value(1.5).run(timeout=TIMEOUT)
    assert at.button(key="q_run").disabled
    floor = mixed_floor_bpw(load_model("charlm"), Policy(), MixedConfig(target_bpw=1.5))
    assert any(f"{floor:.3f} bits per weight" in w.value for w in at.warning)
    at.number_input(key="opt_mixed_target_bpw").set_value(3.0).run(timeout=TIMEOUT)
    assert not at.button(key="q_run").disabled


def test_compare_offers_no_reference_only_axis():
    at = choose(start(), "digits-small", "int2")
    at.switch_page("app_pages/compare.py").run(timeout=TIMEOUT)
    at.button(key="c_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    records = cache.sweep(at.session_state["c_last"])
    assert all("top1_ref" in r["task"] for r in records)  # the records carry the FP16 model's top-1
    offered = at.button_group(key="c_y").options
    assert tables.axis_label("task.top1_ref") not in offered
    assert tables.axis_label("task.top1") in offered and tables.axis_label("weight_cosine") in offered


# ---- the run status, drawn by ui.cache.with_progress ------------------------------------------------------------


class FakeStreamlit:
    """Records what with_progress draws; `drawn` is set once the status is on screen, `ticked` once its clock moved,
    `named` once the bar names a step."""

    def __init__(self):
        self.log: list[tuple[str, str]] = []
        self.drawn, self.ticked, self.named = threading.Event(), threading.Event(), threading.Event()
        self._first = None

    def empty(self):
        self.log.append(("empty", ""))
        return self

    def status(self, label, **_):
        self.log.append(("status", label))
        self._first = label
        self.drawn.set()
        return self

    def update(self, label=None, **_):
        self.log.append(("label", label))
        if label != self._first:
            self.ticked.set()

    def progress(self, value, text=None):
        self.log.append(("bar", text))
        if text and "now: layer.0" in text:
            self.named.set()
        return self


@pytest.fixture
def fake_st(monkeypatch):
    fake = FakeStreamlit()
    monkeypatch.setattr(cache, "st", fake)
    return fake


def test_the_status_is_drawn_before_anything_is_reported_and_names_the_step_now_running(fake_st):
    def work(_progress):
        assert fake_st.drawn.wait(60), "no status while the run was silent"
        _progress(0, 2, "layer.0")
        assert fake_st.named.wait(60), "the bar did not name the step now running"
        return 42

    assert cache.with_progress(work, "Quantizing") == 42
    drawn = [kind for kind, _ in fake_st.log]
    assert drawn[:2] == ["empty", "status"] and drawn[-1] == "empty"  # drawn first, removed once done
    assert ("bar", "0/2 · now: layer.0") in fake_st.log


def test_the_clock_ticks_while_no_event_arrives(fake_st):
    def silent(_progress):
        assert fake_st.ticked.wait(60), "the elapsed time never moved"
        return "done"

    assert cache.with_progress(silent, "Training") == "done"
    labels = [text for kind, text in fake_st.log if kind in ("status", "label")]
    assert labels[0].startswith("Training · ") and labels[0].endswith(" s") and labels[-1] != labels[0]


def test_a_run_behind_busy_workers_says_how_many_come_first(fake_st):
    release = threading.Event()
    blockers = [cache.LINE.submit(release.wait, 60) for _ in range(cache.WORKERS)]  # other sessions' runs
    deadline = time.monotonic() + 60
    while any(cache.LINE.ahead(ticket) is not None for ticket, _ in blockers) and time.monotonic() < deadline:
        time.sleep(0.01)  # both workers busy
    expected = t("run_queued", busy=cache.WORKERS, workers=cache.WORKERS)

    def free_when_shown():
        while ("bar", expected) not in fake_st.log and time.monotonic() < deadline:
            time.sleep(0.01)
        release.set()

    watcher = threading.Thread(target=free_when_shown)
    watcher.start()
    try:
        assert cache.with_progress(lambda _progress: "ran", "Quantizing") == "ran"
    finally:
        release.set()
        watcher.join()
    assert ("bar", expected) in fake_st.log and "ahead" in expected
    assert all(f.result(timeout=60) for _, f in blockers)


def test_an_error_in_the_work_reaches_the_page(fake_st):
    def broken(_progress):
        assert fake_st.drawn.wait(60)
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        cache.with_progress(broken, "Quantizing")
