"""Run history in a real Chromium: three runs on the Quantize page, the history's CSV downloaded and read, two runs
side by side, and the page's URL (with its query string) opened in a fresh browser context, where the sidebar shows
the same model, method and options.

Widgets are found by their keys (Streamlit's st-key-KEY class). Screenshots land in artifacts/screenshots/.
"""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest

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

pytestmark = pytest.mark.browser

SHOTS = ROOT / "artifacts" / "screenshots"
RUNS = [  # (preset, method, sidebar settings): the last one, with options off their defaults, is what the URL holds
    ("small", "int8", {}),
    ("digits-small", "int2", {}),
    ("small", "rtn", {"opt_rtn_bits": "3", "opt_rtn_group_size": "32"}),
]
LINK = {"model": ["small"], "method": ["rtn"], "bits": ["3"], "group_size": ["32"]}


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed (make test installs Debian's 'chromium')")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server(SHOTS.parent / "streamlit-history.log") as (url, _), sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b, url
        finally:
            b.close()


def open_at(browser, url: str):
    """`url` in a browser context of its own: a fresh Streamlit session."""
    pg = browser.new_context(viewport={"width": 1440, "height": 3200}, accept_downloads=True).new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(url)
    return pg


def shot(pg, name: str) -> None:
    pg.wait_for_timeout(800)  # let Plotly finish its transitions
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def cli_record(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "qcore", "run", *args, "--json"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_three_runs_csv_side_by_side_and_a_link_that_reopens_the_view(browser):
    b, url = browser
    pg = open_at(b, url)
    pg.get_by_role("heading", name="Quantize a model").wait_for()
    for preset, method, settings in RUNS:
        select(pg, "preset", preset)
        select(pg, "method", method)
        for key, value in settings.items():
            (select if key.endswith("bits") else type_in)(pg, key, value)
        widget(pg, "q_run").get_by_role("button").click()
        pg.get_by_role("heading", name=re.compile(rf"^Results: {re.escape(preset)} · {method} ")).wait_for()
        idle(pg)
    no_errors(pg)

    pg.locator('[data-testid="stSidebarNav"]').get_by_text("Run history", exact=True).click()
    pg.get_by_role("heading", name="Run history", exact=True).wait_for()
    idle(pg)
    link = pg.url
    assert urlsplit(link).path.endswith("/history") and parse_qs(urlsplit(link).query) == LINK

    with pg.expect_download() as download:
        widget(pg, "h_csv").get_by_role("button").click()
    assert download.value.suggested_filename == "qlab-history.csv"
    with open(download.value.path(), encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["Run"], r["Model"], r["Method"]) for r in rows] == [
        (str(i), preset, method) for i, (preset, method, _) in enumerate(RUNS, start=1)
    ]
    assert rows[2]["Command line"] == "python -m qcore run --preset small --method rtn --bits 3 --group-size 32 --json"
    cli = cli_record("--preset", "small", "--method", "rtn", "--bits", "3", "--group-size", "32")
    for header, key in (("Ratio", "compression_ratio"), ("bpw", "bpw"), ("Weight cosine", "weight_cosine")):
        assert math.isclose(float(rows[2][header]), cli[key], rel_tol=1e-9), header  # every digit, as the CLI
    assert 0 < float(rows[1]["Top-1 accuracy"]) <= 1 and rows[0]["Top-1 accuracy"] == ""

    select(pg, "h_a", "#1")  # beside #3, the newest
    pair = pg.locator(".js-plotly-plot").filter(has_text="per layer, run against run")
    pair.wait_for()
    assert pair.locator(".legendtext").all_text_contents() == ["#1", "#3"]  # one trace per run
    pg.get_by_role("heading", name="Levels of one group, side by side").wait_for()
    hists = pg.locator(".js-plotly-plot").filter(has_text="levels")
    hists.nth(1).wait_for()
    assert hists.count() == 2  # int8's and rtn 3-bit's levels of the same row
    no_errors(pg)
    shot(pg, "30-history-side-by-side")
    pg.context.close()

    fresh = open_at(b, link)  # the copied URL, in a browser session of its own
    fresh.get_by_role("heading", name="Run history", exact=True).wait_for()
    fresh.get_by_text("No runs yet in this session").wait_for()
    idle(fresh)
    assert re.match(r"^small\b", widget(fresh, "preset").get_by_role("combobox").input_value())
    assert widget(fresh, "method").get_by_role("combobox").input_value() == "rtn"
    assert widget(fresh, "opt_rtn_bits").get_by_role("combobox").input_value() == "3"
    assert widget(fresh, "opt_rtn_group_size").locator("input").input_value() == "32"
    assert parse_qs(urlsplit(fresh.url).query) == LINK  # and the fresh session writes the same link back
    no_errors(fresh)
    shot(fresh, "31-history-link-fresh-session")
    fresh.get_by_role("link", name="Go to Quantize").click()
    fresh.get_by_role("heading", name="Quantize a model").wait_for()
    widget(fresh, "q_run").get_by_role("button").click()  # the same run: the same figures as the CLI prints
    fresh.get_by_role(
        "heading", name=re.compile(r"^Results: small · rtn \(Code width 3 bits, Group size 32")
    ).wait_for()
    no_errors(fresh)
    fresh.context.close()
