"""Compare: many configurations on one model, as a Pareto chart of bits per weight against accuracy
(a cosine, or any task metric the model reports)."""

import streamlit as st

from qcore import METHODS, get_method
from ui import cache, figures, models, tables
from ui.decisions import ranking_axes
from ui.guard import guarded, remember_run
from ui.i18n import choice_labels, t
from ui.sidebar import selection
from ui.widgets import table

sel = selection()
st.title(t("c_title"))
if sel.ref is None:
    st.info(t("q_no_model"), icon=":material/upload_file:")
    st.stop()
st.caption(t("c_intro", preset=sel.model_label))
policy = guarded(models.current_policy, _hint="hint_policy")  # the Quantize page's policy controls
model = guarded(models.model_for, sel.ref, _hint="hint_upload")
runnable = [m for m in METHODS if m != "rtn" and not (get_method(m).needs_calibration and not model.can_calibrate)]

rtn_bits = next(o.choices for o in get_method("rtn").options() if o.name == "bits")
groups_all = (0, 32, 64, 128)
with st.container(border=True):
    c1, c2, c3, c4 = st.columns(4)
    bits = c1.multiselect(t("c_bits"), rtn_bits, default=[2, 3, 4], key="c_bits", persist_state="session")
    groups = c2.multiselect(
        t("c_groups"), groups_all, default=[0, 64], key="c_groups", persist_state="session",
        format_func=choice_labels("c_groups", {g: t("c_group_fmt", g=g) if g else t("per_channel") for g in groups_all}),
    )  # fmt: skip
    clips = c3.multiselect(
        t("c_clip"), [False, True], default=[False], key="c_clip", persist_state="session",
        format_func=choice_labels("c_clip", {True: t("c_clip_on"), False: t("c_clip_off")}),
    )  # fmt: skip
    baselines = c4.multiselect(
        t("c_baselines"), runnable, default=["int8", "int2"], key="c_baselines", persist_state="session",
        help=t("c_baselines_help") + (" " + t("c_no_calib") if len(runnable) < len(METHODS) - 1 else ""),
    )  # fmt: skip
    specs = tables.compare_specs(bits, groups, clips, baselines)
    policy_text = models.describe_policy(policy)
    st.caption(t("c_count", n=len(specs), preset=sel.model_label) + " " + t("c_policy", policy=policy_text))
    clicked = st.button(t("c_run"), key="c_run", type="primary", icon=":material/play_arrow:", disabled=not specs)
now = cache.SweepRun(sel.ref, specs, policy)
last = remember_run("c_last", clicked, now)
if last is None or not models.available(last.ref):
    st.info(t("c_start"), icon=":material/info:")
    st.stop()
if last != now:
    st.info(t("c_stale"), icon=":material/sync_problem:")

label = t("c_progress", preset=last.ref.label)
records = guarded(
    cache.with_progress, cache.sweep, label, last, _model=models.model_for(last.ref), _hint="hint_compare"
)
labels = [tables.spec_label(s) for s in last.specs]

axes = ranking_axes(records, tables.accuracy_axes(records))  # no reference-only (x_ref) or constant axis
if st.session_state.get("c_y", "weight_cosine") not in axes:
    st.session_state["c_y"] = "weight_cosine"  # an axis this model lacks (another's task metric)
y = st.segmented_control(
    t("c_y"), axes, default="weight_cosine", required=True, key="c_y",
    format_func=choice_labels("c_y", {k: tables.axis_label(k) for k in axes}), persist_state="session",
)  # fmt: skip
front = tables.front_of(records, y)
st.plotly_chart(figures.pareto(records, labels, front, y), key="c_pareto_chart")
best = [label for label, on in zip(labels, front, strict=True) if on]
st.markdown(t("c_front", n=len(best), configs=", ".join(best), preset=last.ref.label))
st.subheader(t("c_table"))
table(tables.compare_frame(records, labels, front), key="c_table")
st.caption(t("c_table_caption"))
