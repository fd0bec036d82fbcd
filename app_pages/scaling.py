"""Scaling: presets x methods, our figures beside the reference report's, and how they trend with size."""

import streamlit as st

from qcore import METHODS, PRESETS
from qcore.analysis.report import trend_lines
from qcore.api.specs import MethodSpec
from ui import cache, figures, tables
from ui.guard import guarded, remember_run
from ui.i18n import lang, t
from ui.sidebar import method_options, selection
from ui.widgets import table

selection()
st.title(t("s_title"))
st.caption(t("s_intro"))

c1, c2 = st.columns(2)
presets = c1.multiselect(t("s_presets"), list(PRESETS), default=list(PRESETS), key="s_presets", persist_state="session")
methods = c2.multiselect(
    t("s_methods"), list(METHODS), default=["int8", "int2"], key="s_methods", help=t("s_methods_help"),
    persist_state="session",
)  # fmt: skip
now = cache.ScalingRun(
    tuple(p for p in PRESETS if p in presets), tuple(MethodSpec(m, method_options(m)) for m in methods)
)
clicked = st.button(
    t("s_run"), key="s_run", type="primary", icon=":material/play_arrow:", disabled=not (now.presets and now.specs)
)
last = remember_run("s_last", clicked, now)
if last is None:
    st.info(t("s_start"), icon=":material/info:")
    st.stop()
if last != now:
    st.info(t("s_stale"), icon=":material/sync_problem:")

rows = guarded(cache.with_progress, cache.scaling, t("s_progress"), last)

st.subheader(t("s_table"))
table(tables.scaling_frame(rows), key="s_table")
st.caption(t("s_table_caption"))

c1, c2 = st.columns(2)
c1.plotly_chart(figures.scaling_ratio(rows), key="s_ratio_chart")
c2.plotly_chart(figures.scaling_cosine(rows), key="s_cosine_chart")
c1, c2 = st.columns(2)
c1.plotly_chart(figures.scaling_time(rows), key="s_time_chart")
c2.plotly_chart(figures.scaling_metadata(rows), key="s_meta_chart")

if len({r["source"] for r in rows}) > 1:
    trends = trend_lines(rows, lang())
    st.subheader(t("s_trends"))
    for section in ("compression", "accuracy", "speed"):
        st.markdown(f"**{t('s_trend_' + section)}**\n\n" + "\n".join(trends[section]))
else:
    st.caption(t("s_one_preset"))
