"""The session's run history: every finished Quantize run, once, with what it was and what it measured.

An entry keeps its RunSpec (so the full result, with its quantized tensors, can be fetched again from the run
cache for the level histograms) and a slim copy of its record: every scalar figure, the task metrics, and per
layer only the name, shape, size, weight cosine and SQNR. The history lives in session state, at most
HISTORY_MAX entries (the oldest go first); a CSV download carries the table with its numbers unformatted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import streamlit as st

from qcore import RunResult, RunSpec
from qcore.api.specs import MethodSpec
from qcore.format import fmt_bytes, fmt_cos, fmt_db, fmt_metric, fmt_pct, fmt_ratio, fmt_secs
from qcore.labels import metric_label
from ui.i18n import band, lang, t, t_or
from ui.models import describe_policy
from ui.tables import options_text

HISTORY_KEY = "history"
HISTORY_MAX = 50  # entries kept per session; a record is a few KiB, per layer a few numbers
LAYER_KEYS = ("name", "shape", "params", "weight_cosine", "sqnr_db")  # what side by side reads of each layer


@dataclass(frozen=True)
class Entry:
    """One finished run: its number in the session (1, 2, ...), when it finished (server time), its spec, and
    its record (slimmed: see slim)."""

    n: int
    at: str
    spec: RunSpec
    record: dict


def slim(record: dict) -> dict:
    """The record without what side by side does not read: per layer only LAYER_KEYS, no artifact bytes."""
    out = {k: v for k, v in record.items() if k not in ("layers", "artifact")}
    out["layers"] = [{k: la.get(k) for k in LAYER_KEYS} for la in record.get("layers", [])]
    return out


def entries() -> list[Entry]:
    return list(st.session_state.get(HISTORY_KEY) or [])


def record_run(spec: RunSpec, res: RunResult) -> None:
    """Add a finished run to the history, once: the same spec again (a redraw, or the same run repeated from the
    cache) adds nothing."""
    runs = st.session_state.setdefault(HISTORY_KEY, [])
    if any(e.spec == spec for e in runs):
        return
    n = runs[-1].n + 1 if runs else 1
    runs.append(Entry(n, datetime.now().strftime("%Y-%m-%d %H:%M:%S"), spec, slim(res.record)))
    del runs[:-HISTORY_MAX]


def clear() -> None:
    st.session_state[HISTORY_KEY] = []


def run_name(e: Entry) -> str:
    """'#3': how the page names a run."""
    return t("h_run", n=e.n)


def pick_label(e: Entry) -> str:
    """'#3 · 14:05:09 · charlm · rtn · Code width 3 bits': a run in the pickers (only options off their defaults)."""
    changed = MethodSpec(e.spec.method, e.spec.options).changed()
    return t(
        "h_pick", n=e.n, time=e.at[-8:], model=e.spec.model.label, method=e.spec.method,
        options=options_text(changed) if changed else t("no_options"),
    )  # fmt: skip


def task_metrics(rec: dict) -> dict[str, float]:
    """The record's numeric task metrics, nested ones flattened ('a.b'), in the record's order."""
    out: dict[str, float] = {}

    def walk(prefix: str, d: dict) -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                walk(f"{prefix}{k}.", v)
            elif isinstance(v, int | float) and not isinstance(v, bool):
                out[prefix + k] = float(v)

    walk("", rec.get("task") or {})
    return out


def task_heading(key: str) -> str:
    """A task metric's column header: its label and unit in the chosen language (each part of a nested key)."""
    return " · ".join(metric_label(part).heading(lang()) for part in key.split("."))


def basis_text(rec: dict) -> str:
    basis = rec.get("quality_basis") or "weight_cosine"
    return t_or(f"basis_{basis}", basis)


def frame(runs: list[Entry]) -> pd.DataFrame:
    """The history table: one row per run, headers in the chosen language, numbers as numbers (so the table sorts
    and the CSV keeps full precision). Task metrics get a column each, empty where a run's model has none."""
    rows = []
    for e in runs:
        rec, spec = e.record, e.spec
        row = {
            t("h_col_run"): e.n,
            t("h_col_time"): e.at,
            t("col_model"): spec.model.label,
            t("col_method"): spec.method,
            t("h_col_options"): options_text(spec.options),
            t("h_col_policy"): describe_policy(spec.policy),
            t("h_col_codec"): spec.codec,
            t("col_ratio_num"): rec["compression_ratio"],
            t("col_bpw"): rec["bpw"],
            t("col_cosine"): rec["weight_cosine"],
            t("col_sqnr_db"): rec["sqnr_db"],
            t("h_col_verdict"): band(rec.get("quality")),
            t("h_col_basis"): basis_text(rec),
        }
        row.update({task_heading(k): v for k, v in task_metrics(rec).items()})
        row.update({t("col_time_s"): rec["quant_seconds"], t("h_col_threads"): rec.get("threads")})
        rows.append(row | {t("h_col_cli"): spec.command_line()})
    df = pd.DataFrame(rows)
    tail = [t("col_time_s"), t("h_col_threads"), t("h_col_cli")]  # task columns of later runs go before these
    return df[[c for c in df.columns if c not in tail] + tail] if rows else df


def csv_bytes(df: pd.DataFrame) -> bytes:
    """The table as CSV, UTF-8 with a byte-order mark (so spreadsheet programs read the Chinese headers), numbers
    written in full (Python's repr), blanks for missing values."""
    return df.to_csv(index=False).encode("utf-8-sig")


# ---- side by side -------------------------------------------------------------------------------------------


def kpi_frame(a: Entry, b: Entry) -> pd.DataFrame:
    """The two runs' headline figures, one row per figure, formatted as the CLI prints them."""
    rows = [(t("col_model"), a.spec.model.label, b.spec.model.label), (t("col_method"), a.spec.method, b.spec.method)]
    rows.append((t("h_col_options"), options_text(a.spec.options), options_text(b.spec.options)))
    rows.append((t("h_col_policy"), describe_policy(a.spec.policy), describe_policy(b.spec.policy)))
    for label, fn in kpi_rows():
        rows.append((label, fn(a.record), fn(b.record)))
    for key in dict.fromkeys([*task_metrics(a.record), *task_metrics(b.record)]):
        rows.append((task_heading(key), *(_task_text(e.record, key) for e in (a, b))))
    return pd.DataFrame(rows, columns=[t("h_col_figure"), run_name(a), run_name(b)])


def _task_text(rec: dict, key: str) -> str:
    v = task_metrics(rec).get(key)
    return t("na") if v is None else fmt_metric(v)


def kpi_rows() -> list[tuple[str, Callable[[dict], str]]]:
    """(label, record -> text) for each headline figure of the Quantize page's cards."""
    return [
        (t("kpi_ratio"), lambda r: fmt_ratio(r["compression_ratio"])),
        (t("h_kpi_theory"), lambda r: t("h_theory", file=fmt_ratio(r.get("theoretical_file_ratio")),
                                        codes=fmt_ratio(r["theoretical_ratio"]))),
        (t("h_kpi_bpw"), lambda r: f"{r['bpw']:.3f}"),
        (t("kpi_cosine"), lambda r: fmt_cos(r["weight_cosine"])),
        (t("h_col_verdict"), lambda r: t("h_verdict", band=band(r.get("quality")), basis=basis_text(r))),
        (t("kpi_sqnr"), lambda r: fmt_db(r["sqnr_db"])),
        (t("h_kpi_output"), output_text),
        (t("kpi_time"), lambda r: f"{fmt_secs(r['quant_seconds'])} ({t('kpi_threads', n=r.get('threads'))})"),
        (t("kpi_saved"), lambda r: f"{fmt_bytes(r['saved_bytes'])} ({fmt_pct(r['memory_saving'])})"),
    ]  # fmt: skip


def output_text(rec: dict) -> str:
    """The output cosine on the model's own inputs, or (a model without code) on synthetic inputs."""
    real = rec.get("output_cosine")
    return fmt_cos(real if real is not None else rec.get("synthetic_output_cosine"))


def layers_frame(a: Entry, b: Entry) -> pd.DataFrame:
    """Per layer, the two runs' weight cosine and SQNR side by side (layers of either run, in order; blank where
    a run's model lacks the layer)."""
    by = [{la["name"]: la for la in e.record["layers"]} for e in (a, b)]
    names = list(dict.fromkeys([*by[0], *by[1]]))
    rows = []
    for name in names:
        row = {t("col_layer"): name}
        for what, key in ((t("col_cosine"), "weight_cosine"), (t("col_sqnr_db"), "sqnr_db")):
            for e, layers in zip((a, b), by, strict=True):
                row[t("h_col_of", what=what, run=run_name(e))] = layers.get(name, {}).get(key)
        rows.append(row)
    return pd.DataFrame(rows)
