"""Shared pieces of several pages: tables with column formats, KPI cards, task metric cards, downloads."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from qcore import RunResult
from qcore.format import fmt_bytes, fmt_cos, fmt_db, fmt_metric, fmt_pct, fmt_ratio, fmt_secs, to_json
from qcore.labels import metric_label
from ui.decisions import verdict_help, verdict_text
from ui.i18n import lang, t
from ui.tables import metric_help

BAND_COLOR = {"excellent": "green", "good": "blue", "acceptable": "orange", "poor": "red"}
NUMBER_FORMATS = {  # catalog key of a column -> printf format (tables keep numbers so they sort)
    "col_cosine": "%.6f", "col_output_cosine": "%.6f", "col_predicted": "%.6f", "col_sqnr_db": "%.2f",
    "col_range_std": "%.2f", "col_bpw": "%.3f", "col_ratio_num": "%.2fx", "col_time_s": "%.4f", "col_params": "localized",
    "col_synth": "%.6f", "col_cos_x": "%.6f",
}  # fmt: skip


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


def kpi_cards(rec: dict) -> None:
    """The headline figures of one record, formatted exactly as the CLI prints them."""
    c = [*st.columns(3), *st.columns(3)]
    whole, codes = fmt_ratio(rec.get("theoretical_file_ratio")), fmt_ratio(rec["theoretical_ratio"])
    theory = t("kpi_theoretical_both", file=whole, codes=codes)  # with the FP16 tensors kept, and codes alone
    c[0].metric(
        t("kpi_ratio"), fmt_ratio(rec["compression_ratio"]), theory, delta_color="off", delta_arrow="off", border=True,
        help=t("kpi_ratio_help_both", bpw=f"{rec['bpw']:.3f}"),
    )  # fmt: skip
    c[1].metric(
        t("kpi_cosine"), fmt_cos(rec["weight_cosine"]), verdict_text(rec), delta_color=BAND_COLOR.get(rec["quality"], "off"),
        delta_arrow="off", border=True, help=t("kpi_cosine_help_verdict") + "\n\n" + verdict_help(rec),
    )  # fmt: skip
    c[2].metric(t("kpi_sqnr"), fmt_db(rec["sqnr_db"]), border=True, help=t("kpi_sqnr_help"))
    synthetic = rec["output_cosine"] is None and rec.get("synthetic_output_cosine") is not None
    c[3].metric(
        t("kpi_synth") if synthetic else t("kpi_output"),
        fmt_cos(rec["synthetic_output_cosine"] if synthetic else rec["output_cosine"]),
        border=True, help=t("kpi_synth_help") if synthetic else t("kpi_output_help"),
    )  # fmt: skip
    c[4].metric(
        t("kpi_time"), fmt_secs(rec["quant_seconds"]), t("kpi_threads", n=rec["threads"]),
        delta_color="off", delta_arrow="off", border=True, help=t("kpi_time_help"),
    )  # fmt: skip
    c[5].metric(
        t("kpi_saved"), fmt_bytes(rec["saved_bytes"]), fmt_pct(rec["memory_saving"]),
        delta_color="green", delta_arrow="off", border=True,
        help=t("kpi_saved_help", fp16=fmt_bytes(rec["fp16_bytes"]), q=fmt_bytes(rec["quantized_bytes"])),
    )  # fmt: skip


def task_cards(task: dict | None) -> None:
    """The model's own task metrics (any numeric keys), each under its label and unit with its definition as help;
    'x_ref' (the FP16 model's value) sits under 'x'."""
    if not task:
        return
    st.subheader(t("q_task"))
    shown = [k for k in task if not (k.endswith("_ref") and k.removesuffix("_ref") in task)]
    for start in range(0, len(shown), 4):
        for col, key in zip(st.columns(4), shown[start : start + 4], strict=False):
            ref = task.get(f"{key}_ref")
            col.metric(
                metric_label(key).heading(lang()), fmt_metric(task[key]),
                t("kpi_task_ref", value=fmt_metric(ref)) if ref is not None else None,
                delta_color="off", delta_arrow="off", border=True, help=metric_help(key),
            )  # fmt: skip
    st.caption(t("q_task_caption"))


def downloads(res: RunResult, stem: str, method: str) -> None:
    """The artifact (when written to memory) and the record as JSON, exactly as the CLI prints it."""
    stem = f"{stem}-{method}"
    c1, c2, _ = st.columns([1, 1, 2])
    if res.artifact is not None:
        c1.download_button(
            t("dl_parquet"), res.artifact, f"{stem}.parquet", "application/octet-stream", key="q_dl_parquet",
            icon=":material/download:", on_click="ignore",
        )  # fmt: skip
    c2.download_button(
        t("dl_json"), to_json(res.record, indent=2), f"{stem}.json", "application/json", key="q_dl_json",
        icon=":material/data_object:", on_click="ignore",
    )  # fmt: skip
