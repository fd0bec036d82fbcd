"""The defects a new user met when deciding on a recipe, in a real Chromium, each shown fixed: the verdict of charlm
with mixed at 2.75 bpw follows its perplexity; a run's status is on screen at once on charlm with seq (QAT); an
include pattern that matches nothing turns Run off; Compare offers no reference-only (x_ref) axis.

Widgets are found by their keys (Streamlit's st-key-KEY class), so a relabelled option does not break the test.
Screenshots land in artifacts/screenshots/ (gitignored).
"""

from __future__ import annotations

import re

import pytest

from qcore.models.catalog import listing
from tests.browser.serve import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    TIMEOUT_MS,
    idle,
    no_errors,
    select,
    streamlit_server,
    type_in,
    widget,
)
from ui import tables

pytestmark = pytest.mark.browser

SHOTS = ROOT / "artifacts" / "screenshots"
SOON_MS = 20_000  # "at once", with room for a shared machine: presence is asserted, never a duration


@pytest.fixture(scope="module")
def page():
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed (make test installs Debian's 'chromium')")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server(SHOTS.parent / "streamlit-decisions.log") as (url, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            pg = browser.new_context(viewport={"width": 1440, "height": 3200}).new_page()
            pg.set_default_timeout(TIMEOUT_MS)
            pg.goto(url)
            pg.get_by_role("heading", name="Quantize a model").wait_for()
            yield pg
        finally:
            browser.close()


def shot(pg, name: str) -> None:
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def card(pg, label: str):
    return pg.locator('[data-testid="stMetric"]').filter(has_text=label)


def test_charlm_mixed_at_2_75_reads_poor_from_its_perplexity(page):
    assert "charlm" in {row["name"] for row in listing()}
    select(page, "preset", "charlm")
    select(page, "method", "mixed")
    type_in(page, "opt_mixed_target_bpw", "2.75")
    widget(page, "q_run").get_by_role("button").click()
    cosine = card(page, "Weight cosine")
    cosine.wait_for()
    idle(page)
    assert float(cosine.locator('[data-testid="stMetricValue"]').inner_text()) > 0.95  # excellent on cosine alone
    verdict = cosine.locator('[data-testid="stMetricDelta"]').inner_text().strip()
    assert verdict == "poor · judged on perplexity, KL, same-top"
    ratio = card(page, "Compression ratio").locator('[data-testid="stMetricDelta"]').inner_text()
    assert "whole file" in ratio and "codes only" in ratio
    no_errors(page)
    shot(page, "20-verdict-charlm-mixed")


def test_a_run_shows_its_status_at_once_on_charlm_seq(page):
    from playwright.sync_api import expect

    select(page, "preset", "charlm")
    select(page, "method", "seq")
    type_in(page, "opt_seq_qat_steps", "40")  # long enough to watch, short enough for a test
    widget(page, "q_run").get_by_role("button").click()
    status = page.locator('[data-testid="stExpander"]').filter(has_text="Quantizing charlm with seq")
    expect(status).to_be_visible(timeout=SOON_MS)
    assert page.get_by_text("Nothing has run yet").count() == 0  # no stale start hint under a running status
    expect(status.get_by_text(re.compile(r"Quantizing charlm with seq · [1-9]\d* s"))).to_be_visible()  # it ticks
    expect(status.get_by_text(re.compile(r"now: QAT step \d+ of 40"))).to_be_visible()  # the step now running
    shot(page, "21-status-charlm-seq")
    card(page, "Weight cosine").wait_for()
    idle(page)
    assert page.locator('[data-testid="stExpander"]').filter(has_text="Quantizing charlm with seq").count() == 0
    no_errors(page)


def test_an_include_pattern_matching_nothing_turns_run_off(page):
    from playwright.sync_api import expect

    type_in(page, "pol_include", "no_such_tensor")
    run = widget(page, "q_run").get_by_role("button")
    expect(run).to_be_disabled()
    expect(page.get_by_text("the policy selects no tensor to quantize")).to_be_visible()
    shot(page, "22-no-tensors")
    type_in(page, "pol_include", "")
    expect(run).to_be_enabled()
    no_errors(page)


def test_compare_offers_no_reference_only_axis(page):
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Compare", exact=True).click()
    page.get_by_role("heading", name="Compare configurations").wait_for()
    widget(page, "c_run").get_by_role("button").click()
    page.locator(".js-plotly-plot").first.wait_for()
    idle(page)
    offered = [b.strip() for b in widget(page, "c_y").locator("button").all_inner_texts()]
    assert tables.axis_label("task.perplexity") in offered  # charlm's own metrics are offered ...
    assert tables.axis_label("task.perplexity_ref") not in offered  # ... but not the FP16 model's constant
    assert not [o for o in offered if "_ref" in o]
    no_errors(page)
    shot(page, "23-compare-axes")
