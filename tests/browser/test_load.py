"""Eight sessions at once on a fresh server, as a class of students would arrive.

Each session makes its first choice the moment the app draws (a method, or 'Upload a file'), then picks a model or
uploads its own weights, sets one option of its method and runs. Each must see its own result (its model, its
method and option, and the figures qcore gives for them), no page may show an error, and every choice must stick
the first time: nothing here clicks twice. The server's peak memory is printed and bounded. When the tabs close,
the sessions' upload folders must be gone within a minute.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import qcore
from qcore.format import fmt_cos
from qcore.formats.readers import read_weights
from tests.browser.serve import CHROMIUM, CHROMIUM_ARGS, ROOT, TIMEOUT_MS, checkpoint, streamlit_server

pytestmark = pytest.mark.browser

PEAK_RSS_LIMIT = 4 * 2**30  # bytes: generous; the figure itself is printed
FOLDERS_GONE_WITHIN = 60.0  # seconds after the tabs close


@dataclass(frozen=True)
class Plan:
    """One session: its method, one option set through the sidebar, and its model (a preset or an upload)."""

    method: str
    kind: str  # the option's widget: "select", "number" or "toggle"
    label: str  # the option's label in the sidebar
    value: object  # the value set (for a toggle: the state after one click)
    shown: str  # how the results heading spells the option
    preset: str | None = None  # a built-in model, picked in the sidebar
    upload: str | None = None  # a file the session uploads (made by the test)

    @property
    def model(self) -> str:
        return self.preset or self.upload or ""


PLANS = [
    Plan("rtn", "select", "Code width (bits)", 3, "Code width 3 bits", preset="small"),
    Plan("hqq", "select", "Code width (bits)", 2, "Code width 2 bits", preset="small"),
    Plan("nf4", "number", "Group size (weights)", 32, "Group size 32 weights", preset="medium"),
    Plan("gptq", "select", "Code width (bits)", 3, "Code width 3 bits", preset="small"),
    Plan("mixed", "number", "Target size (bits per weight)", 3.5, "Target size 3.5 bits per weight", preset="medium"),
    Plan(
        "e8p",
        "toggle",
        "Incoherence rotation (Hadamard)",
        False,
        "Incoherence rotation (Hadamard) off",
        upload="alpha.safetensors",
    ),
    Plan("seq", "select", "Code width (bits)", 3, "Code width 3 bits", upload="beta.npz"),
    Plan("trellis", "select", "Trellis state bits (L)", 8, "Trellis state bits (L) 8", upload="gamma.safetensors"),
]


def weight_files(folder: Path) -> dict[str, Path]:
    files = [checkpoint(folder, "alpha", 96, 1), checkpoint(folder, "beta", 128, 2, ".npz")]
    return {p.name: p for p in [*files, checkpoint(folder, "gamma", 160, 3)]}


def expected_cosine(plan: Plan, files: dict[str, Path]) -> str:
    """The weight cosine qcore gives for the plan (the page's default policy is qcore's)."""
    model = read_weights(files[plan.upload], name=plan.upload) if plan.upload else qcore.load_model(plan.preset)
    key = {"Code width (bits)": "bits", "Group size (weights)": "group_size", "Target size (bits per weight)": "target_bpw",
           "Incoherence rotation (Hadamard)": "rotate", "Trellis state bits (L)": "L"}[plan.label]  # fmt: skip
    return fmt_cos(qcore.run(model, plan.method, {key: plan.value}).record["weight_cosine"])


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1)) * 1024


async def idle(pg) -> None:
    """Wait for the script run that the last interaction started (if any) to finish."""
    await pg.wait_for_timeout(300)
    await pg.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()


async def pick(pg, label: str, option) -> None:
    """Open the sidebar selectbox labelled `label` and choose the option whose text starts with `option`."""
    from playwright.async_api import expect

    box = pg.locator('[data-testid="stSidebar"]').get_by_role("combobox", name=label, exact=True)
    await box.click()
    await pg.get_by_role("option", name=re.compile(rf"^{re.escape(str(option))}( ·|$)")).click()
    await expect(box).to_have_value(re.compile(rf"^{re.escape(str(option))}( ·|$)"))


async def set_option(pg, plan: Plan) -> None:
    from playwright.async_api import expect

    sidebar = pg.locator('[data-testid="stSidebar"]')
    if plan.kind == "select":
        await pick(pg, plan.label, plan.value)
    elif plan.kind == "number":
        field = sidebar.get_by_label(plan.label, exact=True)
        await field.fill(str(plan.value))
        await field.press("Enter")
        await expect(field).to_have_value(str(plan.value))
    else:
        toggle = sidebar.locator('[data-testid="stCheckbox"]').filter(has_text=plan.label)
        await toggle.get_by_text(plan.label, exact=True).click()
        await expect(toggle.locator("input")).to_be_checked(checked=bool(plan.value))


async def session(browser, url: str, plan: Plan, files: dict[str, Path]) -> dict:
    """One person's visit: first choice at once, then model, option, Run; returns what the page showed."""
    from playwright.async_api import expect

    ctx = await browser.new_context(viewport={"width": 1280, "height": 1000})
    pg = await ctx.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    sidebar = pg.locator('[data-testid="stSidebar"]')
    await pg.goto(url)
    if plan.upload:  # the first choice: 'Upload a file', clicked once, the moment it is drawn
        await sidebar.locator('[data-testid="stRadio"] label').filter(has_text="Upload a file").click()
        file_input = sidebar.locator('[data-testid="stFileUploader"] input[type="file"]')
        await file_input.set_input_files(str(files[plan.upload]))
        await pg.get_by_role("heading", name=f"Model: {plan.upload}", exact=True).wait_for()
        await idle(pg)
        await pick(pg, "Method", plan.method)
    else:  # the first choice: the method, picked the moment the picker is drawn
        await pick(pg, "Method", plan.method)
        await idle(pg)
        await pick(pg, "Model (preset)", plan.preset)
    await idle(pg)
    await expect(sidebar.get_by_role("combobox", name="Method", exact=True)).to_have_value(plan.method)  # it stuck
    await set_option(pg, plan)
    await idle(pg)
    await pg.get_by_role("button", name="Run", exact=True).click()
    heading = pg.get_by_role("heading", name=f"Results: {plan.model} · {plan.method} (")
    await heading.wait_for()
    await idle(pg)
    cosine = pg.locator('[data-testid="stMetric"]').filter(has_text="Weight cosine")
    shown = {
        "heading": await heading.inner_text(),
        "model": await pg.get_by_role("heading", name=f"Model: {plan.model}", exact=True).count(),
        "method": await sidebar.get_by_role("combobox", name="Method", exact=True).input_value(),
        "cosine": (await cosine.locator('[data-testid="stMetricValue"]').inner_text()).strip(),
        "body": await pg.locator("body").inner_text(),
        "errors": await pg.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count(),
    }
    await pg.screenshot(path=str(ROOT / "artifacts" / "screenshots" / f"20-load-{plan.method}.png"))
    return shown


def upload_folders(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("qlab-upload-*"))


async def visit_close_and_watch(url: str, pid: int, files: dict[str, Path], tmp: Path) -> dict:
    """All sessions at once; then the server's peak memory, and how long their folders outlive the closed tabs."""
    from playwright.async_api import async_playwright

    started = time.monotonic()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        visits = await asyncio.gather(*(session(browser, url, plan, files) for plan in PLANS))
        out = {"shown": visits, "ran": time.monotonic() - started, "rss": peak_rss(pid)}
        out["folders"] = upload_folders(tmp)
        await browser.close()  # every tab at once
    closed = time.monotonic()
    while upload_folders(tmp) and time.monotonic() - closed < FOLDERS_GONE_WITHIN:
        await asyncio.sleep(1)
    out["gone_after"], out["left"] = time.monotonic() - closed, upload_folders(tmp)
    return out


def test_eight_sessions_at_once_each_see_their_own_run_and_leave_nothing_behind(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed (make test installs Debian's 'chromium')")
    files = weight_files(tmp_path)
    expected = {plan.method: expected_cosine(plan, files) for plan in PLANS}
    tmp = tmp_path / "server-tmp"  # the server's temp folder: its upload folders land here
    tmp.mkdir()
    (ROOT / "artifacts" / "screenshots").mkdir(parents=True, exist_ok=True)
    with streamlit_server(ROOT / "artifacts" / "streamlit-load.log", env={"TMPDIR": str(tmp)}) as (url, proc):
        out = asyncio.run(visit_close_and_watch(url, proc.pid, files, tmp))
    print(
        f"\n{len(PLANS)} sessions at once: all ran in {out['ran']:.1f} s; server peak RSS {out['rss'] / 2**20:,.0f} MiB;"
        f" {len(out['folders'])} upload folders, gone {out['gone_after']:.1f} s after the tabs closed"
    )
    for plan, shown in zip(PLANS, out["shown"], strict=True):
        assert shown["errors"] == 0, plan.method
        assert shown["method"] == plan.method  # the first choice stuck
        assert shown["model"] == 1 and plan.shown in shown["heading"], shown["heading"]
        assert shown["cosine"] == expected[plan.method], plan.method  # its own run's figures
        others = {p.upload for p in PLANS if p.upload and p.upload != plan.upload}
        assert not any(name in shown["body"] for name in others), plan.method  # nobody else's upload
    assert len(out["folders"]) == sum(1 for p in PLANS if p.upload)  # one per uploading session while it lives
    assert out["rss"] < PEAK_RSS_LIMIT
    assert not out["left"], f"upload folders {FOLDERS_GONE_WITHIN:.0f} s after their tabs closed: {out['left']}"
