"""Shared page pieces: error guard, KPI cards, tables with column formats, downloads, run buttons, and the
sections of the Quantize page (model summary, results, level histogram, sensitivity heatmap)."""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Callable

import pandas as pd
import streamlit as st

from qcore import Model, QcoreError, RunResult, get_method
from qcore.cli import jsonable
from qcore.formats.readers import WEIGHTS_DIR_ENV
from ui import figures, models, tables
from ui.i18n import band, t

log = logging.getLogger("qlab")
BAND_COLOR = {"excellent": "green", "good": "blue", "acceptable": "orange", "poor": "red"}
NUMBER_FORMATS = {  # catalog key of a column -> printf format (tables keep numbers so they sort)
    "col_cosine": "%.6f", "col_output_cosine": "%.6f", "col_predicted": "%.6f", "col_sqnr_db": "%.2f",
    "col_range_std": "%.2f", "col_bpw": "%.3f", "col_ratio_num": "%.2fx", "col_time_s": "%.4f", "col_params": "localized",
    "col_synth": "%.6f", "col_cos_x": "%.6f",
}  # fmt: skip


def guarded(fn: Callable, *args, _hint: str = "hint_sidebar", **kwargs):
    """Call fn; on failure show what went wrong and what to do (`_hint`, a catalog key), then stop the page.

    Never a traceback: bad input (QcoreError) says what to change, anything else is logged as a bug.
    """
    try:
        return fn(*args, **kwargs)
    except QcoreError as e:
        st.error(t("err_input", msg=str(e), hint=t(_hint)), icon=":material/error:")
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
    synthetic = rec["output_cosine"] is None and rec.get("synthetic_output_cosine") is not None
    c[3].metric(
        t("kpi_synth") if synthetic else t("kpi_output"),
        tables.fmt_cos(rec["synthetic_output_cosine"] if synthetic else rec["output_cosine"]),
        border=True, help=t("kpi_synth_help") if synthetic else t("kpi_output_help"),
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


def task_cards(task: dict | None) -> None:
    """The model's own task metrics (any numeric keys); 'x_ref' (the FP16 model's value) sits under 'x'."""
    if not task:
        return
    st.subheader(t("q_task"))
    shown = [k for k in task if not (k.endswith("_ref") and k.removesuffix("_ref") in task)]
    for start in range(0, len(shown), 4):
        for col, key in zip(st.columns(4), shown[start : start + 4], strict=False):
            ref = task.get(f"{key}_ref")
            col.metric(
                key, tables.fmt_metric(task[key]), t("kpi_task_ref", value=tables.fmt_metric(ref)) if ref is not None
                else None, delta_color="off", delta_arrow="off", border=True, help=t("kpi_task_help"),
            )  # fmt: skip
    st.caption(t("q_task_caption"))


def needs_calibration(method: str, model: Model) -> bool:
    """Say so plainly when the method needs calibration data the model lacks (the Run button is then off)."""
    if get_method(method).needs_calibration and model.forward is None:
        st.warning(t("q_needs_calib", method=method, model=model.name), icon=":material/block:")
        return True
    return False


def model_summary(model: Model, ref, policy_key) -> None:
    """What the model holds and what the policy does with each tensor, before anything runs."""
    policy = guarded(models.make_policy, policy_key, _hint="hint_policy")
    dtypes = guarded(models.stored_dtypes, ref)
    df, totals = models.summary(model, policy, dtypes)
    st.markdown(models.totals_text(model, totals))
    if model.skipped:
        st.caption(t("q_skipped", names=", ".join(model.skipped)))
    with st.expander(t("q_tensors", n=len(df)), expanded=ref[0] != "preset"):
        table(df, key="q_summary_table", height=min(38 + 35 * len(df), 420))
        st.caption(t("q_policy_now", policy=models.describe_policy(policy_key)))


def results(res: RunResult, model: Model, ref, method: str, options, codec: str, policy_key) -> None:
    """Everything a run shows: KPIs, task metrics, layers, levels, bytes, downloads and the CLI line."""
    rec = res.record
    st.subheader(t("q_results", preset=models.label(ref), method=method, options=tables.options_text(options)))
    kpi_cards(rec)
    st.caption(t("q_policy", policy=models.describe_policy(policy_key), codec=codec))
    task_cards(rec.get("task"))
    st.subheader(t("q_layers"))
    table(tables.layers_frame(rec), key="q_layers_table", height=min(38 + 35 * len(rec["layers"]), 420))
    st.caption(t("q_layers_caption"))
    st.plotly_chart(figures.layer_cosines(rec), key="q_layers_chart")
    level_histogram(res, model, rec)
    st.subheader(t("q_size"))
    st.plotly_chart(figures.breakdown(rec), key="q_breakdown_chart")
    b = rec["breakdown"]
    st.caption(
        t("q_size_caption", payload=tables.fmt_bytes(b["payload_bytes"]), meta=tables.fmt_bytes(b["metadata_bytes"]),
          fp16=tables.fmt_bytes(b["passthrough_bytes"]), container=tables.fmt_bytes(b["container_bytes"]),
          gain=tables.fmt_bytes(b["codec_gain_bytes"]), share=tables.fmt_pct(rec["metadata_share"]))
    )  # fmt: skip
    st.subheader(t("q_downloads"))
    downloads(res, models.stem(ref), method)
    st.caption(t("q_cli"))
    st.code(cli_command(ref, method, options, codec, policy_key), language="bash")


def level_histogram(res: RunResult, model: Model, rec: dict) -> None:
    """One group of one row of a layer, with the levels W_hat can take drawn over its weights."""
    names = [la["name"] for la in rec["layers"] if tables.has_levels(res, la["name"])]
    if not names:
        return
    st.subheader(t("q_hist"))
    st.caption(t("q_hist_caption"))
    c1, c2, c3 = st.columns(3)
    if st.session_state.get("q_layer", names[-1]) not in names:
        st.session_state["q_layer"] = names[-1]  # a layer of another model: start from this model's last one
    name = c1.selectbox(t("q_layer"), names, index=len(names) - 1, key="q_layer", persist_state="session")
    rows, groups = tables.layer_shape(res, name)
    for key, n in (("q_row", rows), ("q_group", groups)):  # keep a remembered index inside this layer
        if st.session_state.get(key, 0) >= n:
            st.session_state[key] = 0
    row = c2.number_input(t("q_row", n=rows - 1), 0, rows - 1, key="q_row", persist_state="session")
    group = c3.number_input(
        t("q_group", n=groups), 0, groups - 1, key="q_group", disabled=groups == 1, persist_state="session"
    )
    view = guarded(tables.layer_view, res, model, name, int(row), int(group))
    st.plotly_chart(figures.histogram(view), key="q_hist_chart")
    st.markdown(t("q_hist_note", used=view["used"], n=len(view["levels"]), edge=tables.fmt_pct(view["edge_share"])))


def downloads(res: RunResult, stem: str, method: str) -> None:
    stem = f"{stem}-{method}"
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


def cli_command(ref, method: str, options, codec: str = "none", policy_key=models.POLICY_KEY_DEFAULT) -> str:
    """The `python -m qcore run` line that prints the same record."""
    if ref[0] == "preset":
        source = f"--preset {ref[1]}"
    elif ref[0] == "server":
        source = f'--weights "${WEIGHTS_DIR_ENV}/{ref[1]}"'
    else:
        source = f"--weights {shlex.quote(ref[2])}"
    parts = ["python -m qcore run", source, f"--method {method}"]
    defaults = {opt["name"]: opt["default"] for opt in get_method(method).options()}
    for name, value in options:
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            parts += [flag] if value else [f"--no-{flag[2:]}"] if defaults.get(name) else []
        else:
            parts.append(f"{flag} {value}")
    if codec != "none":
        parts.append(f"--codec {codec}")
    return " ".join([*parts, *models.cli_flags(policy_key), "--json"])
