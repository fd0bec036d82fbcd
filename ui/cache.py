"""Cached wrappers around the heavy qcore calls, and a progress bar fed by qcore's progress callback.

Every cached function is keyed on hashable values only: qcore's frozen specs (RunSpec, MethodSpec, ModelRef,
Policy), names and numbers. The Model itself and the progress callback are underscore arguments, so they are not
part of the key: same ref, same bytes, same result, which is why a process-wide cache is safe for uploads too.
The work runs in a worker thread while the script thread draws its status: st.cache_data records any `st.*` call
made inside a cached function for replay, so the status must be drawn outside it.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import streamlit as st

from qcore import Model, ModelRef, Policy, RunResult, RunSpec
from qcore.analysis.report import scaling_rows
from qcore.analysis.sweep import sweep as qcore_sweep
from qcore.api.runs import run_spec
from qcore.api.specs import MethodSpec
from qcore.measure.feasible import Blocker, run_blocker
from ui.i18n import t


@dataclass(frozen=True)
class SensitivityRun:
    """rtn at every width of SENSITIVITY_BITS on one model, one group size, one policy."""

    ref: ModelRef
    group_size: int
    policy: Policy


@dataclass(frozen=True)
class SweepRun:
    """Several method specs on one model (the Compare page)."""

    ref: ModelRef
    specs: tuple[MethodSpec, ...]
    policy: Policy


@dataclass(frozen=True)
class ScalingRun:
    """Method specs across presets (the Scaling and Report pages)."""

    presets: tuple[str, ...]
    specs: tuple[MethodSpec, ...]


CALLS: Counter[str] = Counter()  # how often each computation really ran (cache misses); tests read it
WORKERS = 2  # runs the server does at once (this machine has 2 cores); later ones wait in line


class WorkLine:
    """The worker pool and who waits in it: a run submitted while every worker is busy can say how many runs come
    before it (the ones running, then the ones that arrived earlier)."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qlab-work")
        self._lock = threading.Lock()
        self._waiting: list[int] = []  # tickets submitted and not started, oldest first
        self._running = 0
        self._tickets = itertools.count()

    def submit(self, fn: Callable, *args, **kwargs) -> tuple[int, Future]:
        """fn(*args, **kwargs) on a worker; returns its ticket and future."""
        ticket = next(self._tickets)
        with self._lock:
            self._waiting.append(ticket)

        def work():
            with self._lock:
                self._waiting.remove(ticket)
                self._running += 1
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self._running -= 1

        return ticket, self._pool.submit(work)

    def ahead(self, ticket: int) -> int | None:
        """How many runs come before a waiting ticket; None once it has started."""
        with self._lock:
            if ticket not in self._waiting:
                return None
            return self._running + self._waiting.index(ticket)


LINE = WorkLine(WORKERS)
STATUS_AFTER = 0.15  # seconds a run may take before its status is drawn (a cache hit returns sooner)
TICK = 0.25  # seconds between redraws of the elapsed time while no event arrives
SENSITIVITY_BITS = (2, 3, 4, 8)  # rtn's widths in the heatmap; then e8p, 2 bits past the scalar limit


@st.cache_data(show_spinner=False, max_entries=32)
def quantize(spec: RunSpec, _model: Model | None = None, _progress=None) -> RunResult:
    """qcore's run for a spec, artifact written to memory (RunResult.artifact holds the bytes)."""
    CALLS["quantize"] += 1
    return run_spec(spec, model=_model, progress=_progress)


@st.cache_data(show_spinner=False, max_entries=16)
def sensitivity(job: SensitivityRun, _model: Model | None = None, _progress=None) -> list[dict]:
    """rtn at each of SENSITIVITY_BITS, then e8p: per layer, the SQNR and cosine (records are counted, not kept).
    Each row says its column: "rtn <bits>" or "e8p"."""
    CALLS["sensitivity"] += 1
    runs = [(f"rtn {b}", RunSpec.make(job.ref, "rtn", {"bits": b, "group_size": job.group_size}, job.policy))
            for b in SENSITIVITY_BITS] + [("e8p", RunSpec.make(job.ref, "e8p", {}, job.policy))]  # fmt: skip
    out = []
    for i, (column, spec) in enumerate(runs):

        def step(done: int, total: int, what: str, i: int = i, column: str = column) -> None:
            if _progress:
                _progress(i * total + done, len(runs) * total, f"{column} · {what}")

        rec = run_spec(spec, model=_model, progress=step, keep=False).record
        out += [{"column": column, **{k: la[k] for k in ("name", "sqnr_db", "weight_cosine")}} for la in rec["layers"]]
    return out


@st.cache_data(show_spinner=False, max_entries=16)
def scaling(job: ScalingRun, _progress=None) -> list[dict]:
    """qcore.analysis.report.scaling_rows for each method spec; one progress count over all of them."""
    CALLS["scaling"] += 1
    rows: list[dict] = []
    total = len(job.presets) * len(job.specs)
    for i, spec in enumerate(job.specs):

        def step(done: int, _total: int, label: str, base: int = i * len(job.presets)) -> None:
            if _progress:
                _progress(base + done, total, label)

        rows += scaling_rows(list(job.presets), [spec.method], dict(spec.options), None, step)
    return rows


@st.cache_data(show_spinner=False, max_entries=16)
def sweep(job: SweepRun, _model: Model | None = None, _progress=None) -> list[dict]:
    """qcore.analysis.sweep: one record per method spec on one model, in order."""
    CALLS["sweep"] += 1
    return qcore_sweep(_model, [(s.method, dict(s.options)) for s in job.specs], job.policy, _progress)


@st.cache_data(show_spinner=False, max_entries=64)
def blocker(spec: RunSpec, _model: Model) -> Blocker | None:
    """Why a run of `spec` cannot give a meaningful result (qcore's run_blocker: shapes and policy only), or None."""
    return run_blocker(_model, spec.method, dict(spec.options), spec.policy)


def with_progress(fn: Callable, label: str, *args, **kwargs):
    """Call fn(*args, **kwargs, _progress=...) in a worker thread while a status shows the elapsed time and the step
    now running. The status appears at once (unless fn returns within STATUS_AFTER: a cache hit draws nothing) and
    its clock ticks while no event arrives; while every worker is busy with other runs (other sessions share this
    server's WORKERS), the bar says how many come first. Exceptions from fn are re-raised here.
    """
    events: queue.Queue = queue.Queue()
    report = lambda done, total, what: events.put((done, total, what))
    t0 = time.monotonic()
    ticket, future = LINE.submit(fn, *args, **kwargs, _progress=report)
    try:
        return future.result(timeout=STATUS_AFTER)
    except FutureTimeout:
        pass
    holder = st.empty()
    status = holder.status(status_label(label, time.monotonic() - t0), expanded=True, state="running")
    bar = status.progress(0.0, text=step_text(None))
    last, drawn = None, None
    while not (future.done() and events.empty()):
        try:
            last = events.get(timeout=TICK)
            while not events.empty():  # draw only the newest of a burst
                last = events.get_nowait()
        except queue.Empty:
            pass
        busy = LINE.ahead(ticket) if last is None else None
        queued = t("run_queued", busy=busy, workers=LINE.workers) if busy else None
        now = (status_label(label, time.monotonic() - t0), queued or step_text(last))
        if now != drawn:
            status.update(label=now[0], expanded=True)  # without `expanded`, a relabelled status folds its bar away
            bar.progress(min(last[0] / max(last[1], 1), 1.0) if last else 0.0, text=now[1])
            drawn = now
    holder.empty()
    return future.result()


def status_label(label: str, seconds: float) -> str:
    """The status line: what runs, and for how long so far (whole seconds)."""
    return t("run_elapsed", label=label, seconds=int(seconds))


def step_text(event: tuple[int, int, str] | None) -> str:
    """The bar's text: steps done of the total, and the step now running (qcore reports before each step)."""
    if event is None:
        return t("run_starting")
    done, total, what = event
    return t("run_step", done=done, total=total, what=what)
