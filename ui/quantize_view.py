"""The sections of the Quantize page: the model summary before a run, everything a run shows, the level
histogram of one group, and the calibration guard."""

from __future__ import annotations

import streamlit as st

from qcore import Model, Policy, RunResult, RunSpec, get_method
from qcore.format import fmt_bytes, fmt_cos, fmt_db, fmt_pct
from ui import figures, models, tables
from ui.guard import guarded
from ui.i18n import t
from ui.widgets import downloads, kpi_cards, table, task_cards


def needs_calibration(method: str, model: Model) -> bool:
    """Say so plainly when the method needs calibration data the model lacks (the Run button is then off)."""
    if get_method(method).needs_calibration and not model.can_calibrate:
        st.warning(t("q_needs_calib", method=method, model=model.name), icon=":material/block:")
        return True
    return False


def model_summary(model: Model, spec_ref, policy: Policy) -> None:
    """What the model holds and what the policy does with each tensor, before anything runs."""
    dtypes = guarded(models.stored_dtypes, spec_ref)
    df, counts = models.summary(model, policy, dtypes)
    st.markdown(models.totals_text(model, counts))
    if model.skipped:
        st.caption(t("q_skipped", names=", ".join(model.skipped)))
    with st.expander(t("q_tensors", n=len(df)), expanded=spec_ref.kind != "preset"):
        table(df, key="q_summary_table", height=min(38 + 35 * len(df), 420))
        st.caption(t("q_policy_now", policy=models.describe_policy(policy)))


def results(res: RunResult, model: Model, spec: RunSpec) -> None:
    """Everything a run shows: KPIs, task metrics, layers, levels, bytes, downloads and the CLI line."""
    rec = res.record
    st.subheader(t("q_results", preset=spec.model.label, method=spec.method, options=tables.options_text(spec.options)))
    kpi_cards(rec)
    limits_line(rec)
    st.caption(t("q_policy", policy=models.describe_policy(spec.policy), codec=spec.codec))
    task_cards(rec.get("task"))
    if rec.get("task"):
        st.caption(t("q_task_real", what=task_source(model)))
    st.subheader(t("q_layers"))
    table(tables.layers_frame(rec), key="q_layers_table", height=min(38 + 35 * len(rec["layers"]), 420))
    st.caption(t("q_layers_caption"))
    st.plotly_chart(figures.layer_cosines(rec), key="q_layers_chart")
    level_histogram(res, model, rec)
    st.subheader(t("q_size"))
    st.plotly_chart(figures.breakdown(rec), key="q_breakdown_chart")
    b = rec["breakdown"]
    st.caption(
        t("q_size_caption", payload=fmt_bytes(b["payload_bytes"]), meta=fmt_bytes(b["metadata_bytes"]),
          fp16=fmt_bytes(b["passthrough_bytes"]), container=fmt_bytes(b["container_bytes"]),
          gain=fmt_bytes(b["codec_gain_bytes"]), share=fmt_pct(rec["metadata_share"]))
    )  # fmt: skip
    st.subheader(t("q_downloads"))
    downloads(res, models.stem(spec.model), spec.method)
    st.caption(t("q_cli"))
    st.code(spec.command_line(), language="bash")
    if spec.model.kind == "upload" and spec.model.name == models.FOLDER_NAME:
        st.caption(t("q_cli_folder", name=models.FOLDER_NAME))


def task_source(model: Model) -> str:
    """What the model's task metrics are measured on, as its description says (after 'task: ')."""
    what = model.description.rpartition("task: ")[2]
    return what.split(" (FP32")[0].strip() or model.name


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
    st.markdown(t("q_hist_note", used=view["used"], n=len(view["levels"]), edge=fmt_pct(view["edge_share"])))


def limits_line(rec: dict) -> None:
    """Where the run sits against the distortion-rate bound and the best scalar quantizer at its bits per weight."""
    lim = rec.get("limits")
    if not lim or lim["gap_to_bound_db"] is None:
        return
    gap = lim["gap_to_scalar_db"]
    st.markdown(
        t("q_limits", bpw=f"{lim['bpw']:.3f}", bound=fmt_db(lim["bound_sqnr_db"]), bound_cos=fmt_cos(lim["bound_cosine"]),
          scalar=fmt_db(lim["scalar_sqnr_db"]), scalar_cos=fmt_cos(lim["scalar_cosine"]), sqnr=fmt_db(rec["sqnr_db"]),
          gap_bound=fmt_db(lim["gap_to_bound_db"]), gap_scalar=fmt_db(abs(gap)),
          side=t("q_limits_below") if gap > 0 else t("q_limits_above"))
    )  # fmt: skip
