"""End to end in a real Chromium: serve the app, visit every page, run a quantization, find the charts.

Screenshots land in artifacts/screenshots/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
TIMEOUT_MS = 90_000  # the machine is shared: generous, never asserted as a speed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer 'ok' within {timeout:.0f} s")


@pytest.fixture(scope="module")
def server():
    port = free_port()
    SHOTS.mkdir(parents=True, exist_ok=True)
    log = open(SHOTS.parent / "streamlit-server.log", "w")  # noqa: SIM115 - closed in the finally below
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://localhost:{port}"
        wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def page(server):
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed (make test installs Debian's 'chromium')")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1440, "height": 3200})
            pg.set_default_timeout(TIMEOUT_MS)
            pg.goto(server)
            yield pg
        finally:
            browser.close()


def shot(page, name: str) -> None:
    page.wait_for_timeout(800)  # let Plotly finish its transitions
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def no_errors(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0


def open_page(page, title: str, heading: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=heading).wait_for()


def test_quantize_runs_and_draws(page):
    page.get_by_role("heading", name="Quantize a model").wait_for()
    page.locator('[data-testid="stSidebar"]').get_by_text("Model (preset)").wait_for()  # the shared sidebar
    shot(page, "01-quantize-start")
    page.get_by_role("button", name="Run", exact=True).click()
    kpi = page.locator('[data-testid="stMetric"]').filter(has_text="Weight cosine")
    kpi.wait_for()
    assert kpi.locator('[data-testid="stMetricValue"]').inner_text().strip().startswith("0.")
    page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').first.wait_for()
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 3
    no_errors(page)
    shot(page, "02-quantize-results")


def test_scaling_page(page):
    open_page(page, "Scaling", "Scaling with model size")
    page.get_by_role("button", name="Run scaling").click()
    page.locator(".js-plotly-plot").nth(3).wait_for()
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 4
    no_errors(page)
    shot(page, "03-scaling")


def test_compare_page(page):
    open_page(page, "Compare", "Compare configurations")
    page.get_by_role("button", name="Run comparison").click()
    page.locator(".js-plotly-plot").first.wait_for()
    page.get_by_text("Pareto front (").wait_for()
    no_errors(page)
    shot(page, "04-compare")


def test_extrapolate_page(page):
    open_page(page, "Extrapolate", "Extrapolate to larger models")
    page.get_by_role("button", name="Measure and extrapolate").click()
    page.locator(".js-plotly-plot").first.wait_for()
    page.locator('[data-testid="stDataFrame"]').wait_for()
    no_errors(page)
    shot(page, "05-extrapolate")


def test_report_page_and_language(page):
    open_page(page, "Report", "Scaling report")
    page.get_by_role("heading", name="Quantization scaling report").wait_for()
    no_errors(page)
    shot(page, "06-report")
    page.locator('[data-testid="stSidebar"]').get_by_text("中文", exact=True).click()
    page.get_by_role("heading", name="量化方法缩放分析报告").wait_for()
    assert page.locator('[data-testid="stSidebarNav"]').get_by_text("量化", exact=True).count() == 1
    shot(page, "07-report-zh")
    open_page(page, "量化", "量化模型")
    page.locator('[data-testid="stMetric"]').filter(has_text="权重余弦").wait_for()
    no_errors(page)
    shot(page, "08-quantize-zh")
