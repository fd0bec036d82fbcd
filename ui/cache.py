"""Cached wrappers around the heavy qcore calls, and a progress bar fed by qcore's progress callback.

Every cached function is keyed on hashable values only: model refs (a preset name, or an upload's sha256
digest: see ui.models), method names, option tuples (`Spec`) and policy tuples. The Model itself and the
progress callback are underscore arguments, so they are not part of the key: same ref, same bytes, same
result, which is why a process-wide cache is safe for uploads too. The work runs in
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
from qcore.analysis.report import scaling_rows
from qcore.analysis.sweep import sweep as qcore_sweep
from qcore.models.presets import load_model

Options = tuple[tuple[str, Any], ...]  # sorted (name, value) pairs: a hashable options dict
Spec = tuple[str, Options]  # (method, options)

CALLS: Counter[str] = Counter()  # how often each computation really ran (cache misses); tests read it
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="qlab-work")


def as_options(options: dict) -> Options:
    return tuple(sorted(options.items()))


SENSITIVITY_BITS = (2, 3, 4, 8)


def _model_of(ref: tuple, model: qcore.Model | None) -> qcore.Model:
    """The model passed along with its ref (ui.models.model_for); a preset ref may come without one."""
    if model is None and ref[0] != "preset":
        raise qcore.QcoreError(f"{ref[0]} model {ref[1:]} was not passed in")
    return model if model is not None else load_model(ref[1])


@st.cache_data(show_spinner=False, max_entries=32)
def quantize(
    ref: tuple, method: str, options: Options, codec: str = "none", policy: tuple = (True, False, None, None),
    _model: qcore.Model | None = None, _progress=None,
) -> qcore.RunResult:  # fmt: skip
    """qcore.run on the model `ref` names, artifact written to memory (RunResult.artifact holds the bytes)."""
    CALLS["quantize"] += 1
    model = _model_of(ref, _model)
    return qcore.run(model, method, dict(options), qcore.Policy(*policy), codec=codec, progress=_progress)


@st.cache_data(show_spinner=False, max_entries=16)
def sensitivity(
    ref: tuple, group_size: int, policy: tuple, _model: qcore.Model | None = None, _progress=None
) -> list[dict]:
    """rtn at each of SENSITIVITY_BITS: per layer, the SQNR and cosine (records are counted, not kept)."""
    CALLS["sensitivity"] += 1
    model, out = _model_of(ref, _model), []
    n = len(model.tensors)
    for i, bits in enumerate(SENSITIVITY_BITS):

        def step(done: int, _total: int, what: str, i: int = i, bits: int = bits) -> None:
            if _progress:
                _progress(i * n + done, len(SENSITIVITY_BITS) * n, f"{bits}-bit · {what}")

        options = {"bits": bits, "group_size": group_size}
        rec = qcore.run(model, "rtn", options, qcore.Policy(*policy), progress=step, keep=False).record
        out += [{"bits": bits, **{k: la[k] for k in ("name", "sqnr_db", "weight_cosine")}} for la in rec["layers"]]
    return out


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
def sweep(
    ref: tuple, specs: tuple[Spec, ...], policy: tuple = (True, False, None, None), _model=None, _progress=None
) -> list[dict]:
    """qcore.analyse.sweep: one record per (method, options) on one model, in order."""
    CALLS["sweep"] += 1
    specs_ = [(method, dict(options)) for method, options in specs]
    return qcore_sweep(_model_of(ref, _model), specs_, qcore.Policy(*policy), _progress)


def with_progress(fn: Callable, label: str, *args, **kwargs):
    """Call fn(*args, **kwargs, _progress=...) in a worker thread, drawing a progress bar while it reports.

    A cache hit reports nothing, so no bar appears. Exceptions from fn are re-raised here.
    """
    events: queue.Queue = queue.Queue()
    report = lambda done, total, what: events.put((done, total, what))
    future = _POOL.submit(fn, *args, **kwargs, _progress=report)
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
