"""Shared page pieces: error guard, KPI cards, tables with column formats, downloads, run buttons."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pandas as pd
import streamlit as st

from qcore import QcoreError, RunResult
from qcore.cli import jsonable
from ui import tables
from ui.i18n import band, t

log = logging.getLogger("qlab")
BAND_COLOR = {"excellent": "green", "good": "blue", "acceptable": "orange", "poor": "red"}
NUMBER_FORMATS = {  # catalog key of a column -> printf format (tables keep numbers so they sort)
    "col_cosine": "%.6f", "col_output_cosine": "%.6f", "col_predicted": "%.6f", "col_sqnr_db": "%.2f",
    "col_range_std": "%.2f", "col_bpw": "%.3f", "col_ratio_num": "%.2fx", "col_time_s": "%.4f", "col_params": "%d",
}  # fmt: skip


def guarded(fn: Callable, *args, **kwargs):
    """Call fn; on failure show what went wrong and what to do, then stop the page (never a traceback)."""
    try:
        return fn(*args, **kwargs)
    except QcoreError as e:
        st.error(t("err_input", msg=str(e)), icon=":material/error:")
    except Exception as e:  # a bug, not bad input: log it for us, tell the user what to try
        log.exception("unexpected error in %s", getattr(fn, "__name__", fn))
        st.error(t("err_internal", kind=type(e).__name__, msg=str(e)), icon=":material/bug_report:")
    st.stop()


def kpi_cards(rec: dict) -> None:
    """The headline figures of one record, formatted exactly as the CLI prints them."""
    c = [*st.columns(3), *st.columns(3)]
    c[0].metric(
        t("kpi_ratio"), tables.fmt_ratio(rec["compression_ratio"]), t("kpi_theoretical", value=tables.fmt_ratio(rec["theoretical_ratio"])),
        delta_color="off", delta_arrow="off", border=True, help=t("kpi_ratio_help", bpw=f"{rec['bpw']:.3f}"),
    )  # fmt: skip
    c[1].metric(
        t("kpi_cosine"), tables.fmt_cos(rec["weight_cosine"]), band(rec["quality"]),
        delta_color=BAND_COLOR.get(rec["quality"], "off"), delta_arrow="off", border=True, help=t("kpi_cosine_help"),
    )  # fmt: skip
    c[2].metric(t("kpi_sqnr"), tables.fmt_db(rec["sqnr_db"]), border=True, help=t("kpi_sqnr_help"))
    c[3].metric(
        t("kpi_output"), tables.fmt_cos(rec["output_cosine"]), border=True, help=t("kpi_output_help"),
    )  # fmt: skip
    c[4].metric(
        t("kpi_time"), tables.fmt_secs(rec["quant_seconds"]), t("kpi_threads", n=rec["threads"]),
        delta_color="off", delta_arrow="off", border=True, help=t("kpi_time_help"),
    )  # fmt: skip
    c[5].metric(
        t("kpi_saved"), tables.fmt_bytes(rec["saved_bytes"]), tables.fmt_pct(rec["memory_saving"]),
        delta_color="green", delta_arrow="off", border=True,
        help=t("kpi_saved_help", fp16=tables.fmt_bytes(rec["fp16_bytes"]), q=tables.fmt_bytes(rec["quantized_bytes"])),
    )  # fmt: skip


def table(df: pd.DataFrame, key: str, height: int | str = "auto") -> None:
    """st.dataframe with printf formats on the known numeric columns."""
    config = {
        t(k): st.column_config.NumberColumn(format=f)
        for k, f in NUMBER_FORMATS.items()
        if t(k) in df and pd.api.types.is_numeric_dtype(df[t(k)])
    }
    if t("col_pareto") in df:
        config[t("col_pareto")] = st.column_config.CheckboxColumn()
    st.dataframe(df, hide_index=True, column_config=config, key=key, height=height)


def downloads(res: RunResult, preset: str, method: str) -> None:
    stem = f"{preset}-{method}"
    c1, c2, _ = st.columns([1, 1, 2])
    if res.artifact is not None:
        c1.download_button(
            t("dl_parquet"), res.artifact, f"{stem}.parquet", "application/octet-stream", key="q_dl_parquet",
            icon=":material/download:", on_click="ignore",
        )  # fmt: skip
    doc = json.dumps(jsonable(res.record), indent=2, ensure_ascii=False)
    c2.download_button(
        t("dl_json"), doc, f"{stem}.json", "application/json", key="q_dl_json", icon=":material/data_object:",
        on_click="ignore",
    )  # fmt: skip


def remember_run(key: str, clicked: bool, value) -> object | None:
    """The inputs of the last run a button started (kept in session state), or None before any."""
    if clicked:
        st.session_state[key] = value
    return st.session_state.get(key)


def cli_command(preset: str, method: str, options, codec: str = "none") -> str:
    """The `python -m qcore run` line that prints the same record."""
    parts = ["python -m qcore run", f"--preset {preset}", f"--method {method}"]
    for name, value in options:
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            parts += [flag] if value else []
        else:
            parts.append(f"{flag} {value}")
    if codec != "none":
        parts.append(f"--codec {codec}")
    return " ".join([*parts, "--json"])
