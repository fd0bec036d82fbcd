"""What the browser tests share: a fresh `streamlit run` of the app on a free port, Chromium's flags, and small
weight files whose tensor names and sizes tell sessions apart."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
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


@contextmanager
def streamlit_server(log: Path, env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """A fresh server of the app (its URL and process), its output in `log`; stopped on exit."""
    port = free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        try:
            url = f"http://localhost:{port}"
            wait_healthy(url, proc)
            yield url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def checkpoint(folder: Path, prefix: str, width: int, seed: int, suffix: str = ".safetensors") -> Path:
    """A small decoder-like checkpoint (safetensors or npz) whose tensor names and sizes tell sessions apart."""
    g = torch.Generator().manual_seed(seed)
    tensors = {
        f"{prefix}.embed_tokens.weight": torch.randn(64, width, generator=g) * 0.02,
        f"{prefix}.mlp.up_proj.weight": torch.randn(2 * width, width, generator=g) * 0.02,
        f"{prefix}.norm.weight": torch.ones(width),
        "lm_head.weight": torch.randn(64, width, generator=g) * 0.02,
    }
    path = folder / f"{prefix}{suffix}"
    if suffix == ".npz":
        import numpy as np

        np.savez(path, **{k: v.numpy() for k, v in tensors.items()})
    else:
        from safetensors.torch import save_file

        save_file(tensors, path)
    return path


# ---- driving the page by widget key ------------------------------------------------------------------------


def idle(pg) -> None:
    """Wait for the script run that the last interaction started (if any) to finish."""
    pg.wait_for_timeout(300)
    pg.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()


def widget(pg, key: str):
    return pg.locator(f".st-key-{key}")


def select(pg, key: str, value: str) -> None:
    """Pick the option of selectbox `key` whose label starts with `value`."""
    import re

    idle(pg)  # a rerun redraws the sidebar: an open list would be detached under the click
    widget(pg, key).get_by_role("combobox").click()
    pg.get_by_role("option", name=re.compile(rf"^{re.escape(value)}(\b|\s|$)")).first.click()
    idle(pg)


def type_in(pg, key: str, value: str) -> None:
    """Type into the text or number input `key` and commit it."""
    field = widget(pg, key).locator("input")
    field.fill(value)
    field.press("Enter")
    idle(pg)


def no_errors(pg) -> None:
    assert pg.locator('[data-testid="stException"]').count() == 0
    assert pg.locator('[data-testid="stAlertContentError"]').count() == 0
