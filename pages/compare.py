"""Compare: many configurations on one model, as a Pareto chart of bits per weight against accuracy."""

import streamlit as st

from qcore import METHODS, get_method
from qcore.analyse import pareto_front
from ui import cache, figures, tables, views
from ui.i18n import t
from ui.sidebar import selection

sel = selection()
st.title(t("c_title"))
st.caption(t("c_intro", preset=sel.preset))

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
        t("c_baselines"), [m for m in METHODS if m != "rtn"], default=["int8", "int2"], key="c_baselines",
        help=t("c_baselines_help"), persist_state="session",
    )  # fmt: skip
    specs = tables.compare_specs(bits, groups, clips, baselines)
    st.caption(t("c_count", n=len(specs), preset=sel.preset))
    clicked = st.button(t("c_run"), key="c_run", type="primary", icon=":material/play_arrow:", disabled=not specs)
last = views.remember_run("c_last", clicked, (sel.preset, specs))
if last is None:
    st.info(t("c_start"), icon=":material/info:")
    st.stop()
if last != (sel.preset, specs):
    st.info(t("c_stale"), icon=":material/sync_problem:")

preset, specs = last
records = views.guarded(cache.with_progress, cache.sweep, t("c_progress", preset=preset), preset, specs)
labels = [tables.spec_label(m, o) for m, o in specs]

y = st.segmented_control(
    t("c_y"), ["weight_cosine", "output_cosine"], default="weight_cosine", required=True, key="c_y",
    format_func={k: t(f"y_{k}") for k in ("weight_cosine", "output_cosine")}.get, persist_state="session",
)  # fmt: skip
front = pareto_front(records, "bpw", y)
st.plotly_chart(figures.pareto(records, labels, front, y), key="c_pareto_chart")
best = [label for label, on in zip(labels, front, strict=True) if on]
st.markdown(t("c_front", n=len(best), configs=", ".join(best), preset=preset))
st.subheader(t("c_table"))
views.table(tables.compare_frame(records, labels, front), key="c_table")
st.caption(t("c_table_caption"))
