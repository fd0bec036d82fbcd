"""Quantize (home): one model (a preset or your own weights), one method, live; then the figures, the layers,
the levels, the bytes, and how sensitive each layer is to the bit width."""

import streamlit as st

from qcore import RunSpec
from ui import cache, figures, models, tables
from ui.decisions import blocker_text
from ui.guard import guarded, remember_run
from ui.history import record_run
from ui.i18n import choice_labels, t
from ui.quantize_view import model_summary, needs_calibration, results
from ui.sidebar import method_summary, selection

sel = selection()
st.title(t("q_title"))
st.caption(t("q_intro"))
if sel.ref is None:
    st.info(t("q_no_model"), icon=":material/upload_file:")
    st.stop()
model = guarded(models.model_for, sel.ref, _hint="hint_upload")

st.subheader(t("q_model", name=model.name))
c1, c2, c3 = st.columns([1, 1.2, 1.2], vertical_alignment="bottom")
defaults = models.POLICY_DEFAULTS
c1.toggle(t("pol_head"), defaults["pol_head"], key="pol_head", help=t("pol_head_help"), persist_state="session")
c1.toggle(t("pol_emb"), defaults["pol_emb"], key="pol_emb", help=t("pol_emb_help"), persist_state="session")
for col, name in ((c2, "include"), (c3, "exclude")):
    col.text_input(
        t(f"pol_{name}"), key=f"pol_{name}", placeholder=t(f"pol_{name}_ph"), help=t("pol_regex_help"),
        persist_state="session",
    )  # fmt: skip
policy = guarded(models.current_policy, _hint="hint_policy")
model_summary(model, sel.ref, policy)

st.subheader(t("q_method"))
left, right = st.columns([3, 1], vertical_alignment="bottom")
left.markdown(t("q_choice", preset=sel.model_label, method=sel.method, options=tables.options_text(sel.options)))
left.caption(method_summary(sel.method))
codec = right.segmented_control(
    t("q_codec"), ["none", "zstd"], default="none", required=True, key="q_codec", help=t("q_codec_help"),
    persist_state="session",
)  # fmt: skip
blocked = needs_calibration(sel.method, model)
now = RunSpec(sel.ref, sel.method, sel.options, policy, codec)
block = guarded(cache.blocker, now, model) if sel.valid and not blocked else None  # nothing selected, mixed's floor
run_col, why_col = st.columns([1, 6], vertical_alignment="center")
clicked = run_col.button(
    t("q_run"), key="q_run", type="primary", icon=":material/play_arrow:",
    disabled=not sel.valid or blocked or block is not None,
)  # fmt: skip
if block is not None:
    why_col.warning(blocker_text(block), icon=":material/block:")
last = remember_run("q_last", clicked, now)
if last is None or not models.available(last.model):
    st.info(t("q_start", model=sel.model_label, method=sel.method), icon=":material/info:")
else:
    if last != now:
        st.info(t("q_stale"), icon=":material/sync_problem:")
    run_model = models.model_for(last.model)
    label = t("q_progress", preset=last.model.label, method=last.method)
    res = guarded(cache.with_progress, cache.quantize, label, last, _model=run_model)
    record_run(last, res)  # the session's run history (the Run history page)
    results(res, run_model, last)

st.subheader(t("q_sens"))
st.caption(t("q_sens_intro", bits=", ".join(map(str, cache.SENSITIVITY_BITS))))
c1, c2, c3 = st.columns([1, 1, 1], vertical_alignment="bottom")
group = c1.selectbox(
    t("q_sens_group"), [0, 32, 64, 128], index=3, key="q_sens_group", persist_state="session",
    format_func=choice_labels("q_sens_group", {g: t("c_group_fmt", g=g) if g else t("per_channel") for g in (0, 32, 64, 128)}),
)  # fmt: skip
metric = c2.segmented_control(
    t("q_sens_metric"), ["sqnr_db", "weight_cosine"], default="sqnr_db", required=True, key="q_sens_metric",
    format_func=choice_labels("q_sens_metric", {"sqnr_db": "SQNR (dB)", "weight_cosine": t("y_weight_cosine")}),
    persist_state="session",
)  # fmt: skip
sens_now = cache.SensitivityRun(sel.ref, group, policy)
clicked = c3.button(t("q_sens_run"), key="q_sens_run", icon=":material/grid_on:")
sens = remember_run("q_sens_last", clicked, sens_now)
if sens is None or not models.available(sens.ref):
    st.info(t("q_sens_start"), icon=":material/info:")
    st.stop()
if sens != sens_now:
    st.info(t("q_sens_stale"), icon=":material/sync_problem:")
label = t("q_sens_progress", preset=sens.ref.label)
rows = guarded(cache.with_progress, cache.sensitivity, label, sens, _model=models.model_for(sens.ref))
if not rows:
    st.info(t("q_sens_empty"), icon=":material/info:")
    st.stop()
per_width = st.toggle(
    t("q_sens_per_width"), False, key="q_sens_per_width", help=t("q_sens_per_width_help"), persist_state="session"
)
st.plotly_chart(figures.sensitivity(rows, metric, per_width), key="q_sens_chart")
st.caption(t("q_sens_caption", group=t("c_group_fmt", g=sens.group_size) if sens.group_size else t("per_channel")))
