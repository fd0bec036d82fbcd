"""Compare: many configurations on one model, as a Pareto chart of bits per weight against accuracy
(a cosine, or any task metric the model reports)."""

import streamlit as st

from qcore import METHODS, get_method
from ui import cache, figures, models, tables, views
from ui.i18n import t
from ui.sidebar import selection

sel = selection()
st.title(t("c_title"))
if sel.ref is None:
    st.info(t("q_no_model"), icon=":material/upload_file:")
    st.stop()
st.caption(t("c_intro", preset=sel.model_label))
policy = models.policy_key()
model = views.guarded(models.model_for, sel.ref, _hint="hint_upload")
runnable = [m for m in METHODS if m != "rtn" and not (get_method(m).needs_calibration and model.forward is None)]

rtn_bits = next(o["choices"] for o in get_method("rtn").options() if o["name"] == "bits")
with st.container(border=True):
    c1, c2, c3, c4 = st.columns(4)
    bits = c1.multiselect(t("c_bits"), rtn_bits, default=[2, 3, 4], key="c_bits", persist_state="session")
    groups = c2.multiselect(
        t("c_groups"), [0, 32, 64, 128], default=[0, 64], key="c_groups", persist_state="session",
        format_func={g: t("c_group_fmt", g=g) if g else t("per_channel") for g in (0, 32, 64, 128)}.get,
    )  # fmt: skip
    clips = c3.multiselect(
        t("c_clip"), [False, True], default=[False], key="c_clip", persist_state="session",
        format_func={True: t("c_clip_on"), False: t("c_clip_off")}.get,
    )  # fmt: skip
    baselines = c4.multiselect(
        t("c_baselines"), runnable, default=["int8", "int2"], key="c_baselines", persist_state="session",
        help=t("c_baselines_help") + (" " + t("c_no_calib") if len(runnable) < len(METHODS) - 1 else ""),
    )  # fmt: skip
    specs = tables.compare_specs(bits, groups, clips, baselines)
    views.guarded(models.make_policy, policy, _hint="hint_policy")  # a bad pattern is reported here
    policy_text = models.describe_policy(policy)
    st.caption(t("c_count", n=len(specs), preset=sel.model_label) + " " + t("c_policy", policy=policy_text))
    clicked = st.button(t("c_run"), key="c_run", type="primary", icon=":material/play_arrow:", disabled=not specs)
now = (sel.ref, specs, policy)
last = views.remember_run("c_last", clicked, now)
if last is None or not models.available(last[0]):
    st.info(t("c_start"), icon=":material/info:")
    st.stop()
if last != now:
    st.info(t("c_stale"), icon=":material/sync_problem:")

ref, specs, policy = last
label = t("c_progress", preset=models.label(ref))
records = views.guarded(
    cache.with_progress, cache.sweep, label, ref, specs, policy, _model=models.model_for(ref), _hint="hint_compare"
)
labels = [tables.spec_label(m, o) for m, o in specs]

axes = tables.accuracy_axes(records)
if st.session_state.get("c_y", "weight_cosine") not in axes:
    st.session_state["c_y"] = "weight_cosine"  # an axis this model lacks (another's task metric)
y = st.segmented_control(
    t("c_y"), axes, default="weight_cosine", required=True, key="c_y",
    format_func={k: tables.axis_label(k) for k in axes}.get, persist_state="session",
)  # fmt: skip
front = tables.front_of(records, y)
st.plotly_chart(figures.pareto(records, labels, front, y), key="c_pareto_chart")
best = [label for label, on in zip(labels, front, strict=True) if on]
st.markdown(t("c_front", n=len(best), configs=", ".join(best), preset=models.label(ref)))
st.subheader(t("c_table"))
views.table(tables.compare_frame(records, labels, front), key="c_table")
st.caption(t("c_table_caption"))
