"""Cached wrappers around the heavy qcore calls, and a progress bar fed by qcore's progress callback.

Every cached function is keyed on hashable values only: preset names, method names and option tuples
(`Spec`). The progress callback is an underscore argument, so it is not part of the key. The work runs in
a worker thread while the script thread draws the bar: st.cache_data records any `st.*` call made inside
a cached function for replay, so the bar must be drawn outside it.
"""

from __future__ import annotations

import queue
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import streamlit as st

import qcore
from qcore.analyse import sweep as qcore_sweep
from qcore.report import scaling_rows

Options = tuple[tuple[str, Any], ...]  # sorted (name, value) pairs: a hashable options dict
Spec = tuple[str, Options]  # (method, options)

CALLS: Counter[str] = Counter()  # how often each computation really ran (cache misses); tests read it
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="qlab-work")


def as_options(options: dict) -> Options:
    return tuple(sorted(options.items()))


@st.cache_data(show_spinner=False, max_entries=32)
def quantize(preset: str, method: str, options: Options, codec: str = "none", _progress=None) -> qcore.RunResult:
    """qcore.run on a preset, artifact written to memory (RunResult.artifact holds the Parquet bytes)."""
    CALLS["quantize"] += 1
    return qcore.run(qcore.load_preset(preset), method, dict(options), codec=codec, progress=_progress)


@st.cache_data(show_spinner=False, max_entries=16)
def scaling(presets: tuple[str, ...], specs: tuple[Spec, ...], _progress=None) -> list[dict]:
    """qcore.report.scaling_rows for each (method, options); one progress count over all of them."""
    CALLS["scaling"] += 1
    rows: list[dict] = []
    total = len(presets) * len(specs)
    for i, (method, options) in enumerate(specs):
        base = i * len(presets)

        def step(done: int, _total: int, label: str, base: int = base) -> None:
            if _progress:
                _progress(base + done, total, label)

        rows += scaling_rows(list(presets), [method], dict(options), None, step)
    return rows


@st.cache_data(show_spinner=False, max_entries=16)
def sweep(preset: str, specs: tuple[Spec, ...], _progress=None) -> list[dict]:
    """qcore.analyse.sweep: one record per (method, options) on one preset, in order."""
    CALLS["sweep"] += 1
    specs_ = [(method, dict(options)) for method, options in specs]
    return qcore_sweep(qcore.load_preset(preset), specs_, qcore.Policy(), _progress)


def with_progress(fn: Callable, label: str, *args):
    """Call fn(*args, _progress=...) in a worker thread, drawing a progress bar while it reports.

    A cache hit reports nothing, so no bar appears. Exceptions from fn are re-raised here.
    """
    events: queue.Queue = queue.Queue()
    future = _POOL.submit(fn, *args, _progress=lambda done, total, what: events.put((done, total, what)))
    bar = None
    while not (future.done() and events.empty()):
        try:
            done, total, what = events.get(timeout=0.05)
        except queue.Empty:
            continue
        if bar is None:
            bar = st.progress(0.0, text=label)
        bar.progress(min(done / max(total, 1), 1.0), text=f"{label} · {done}/{total} · {what}")
    if bar is not None:
        bar.empty()
    return future.result()
