"""Extrapolate: file sizes at 0.6B, 1B, 7B and a custom size, from each method's bpw measured on 'large'."""

import streamlit as st

from qcore import METHODS
from qcore.analyse import NAMED_SIZES, naive_extrapolation
from ui import cache, figures, tables, views
from ui.i18n import t
from ui.sidebar import method_options, selection

PRESET = "large"  # the largest preset: its bpw carries the least fixed overhead

sel = selection()
st.title(t("x_title"))
st.warning(t("x_basis"), icon=":material/info:")

c1, c2 = st.columns([2, 1])
default = list(dict.fromkeys(["int8", "int2", sel.method]))
methods = c1.multiselect(
    t("x_methods"), list(METHODS), default=default, key="x_methods", persist_state="session",
    help=t("x_methods_help"),
)  # fmt: skip
billions = c2.number_input(
    t("x_custom"), min_value=0.001, max_value=10_000.0, value=3.0, step=0.5, format="%.3f", key="x_custom",
    persist_state="session",
)  # fmt: skip
specs = tuple((m, method_options(m)) for m in methods)
clicked = st.button(t("x_run"), key="x_run", type="primary", icon=":material/play_arrow:", disabled=not specs)
last = views.remember_run("x_last", clicked, specs)
if last is None:
    st.info(t("x_start", preset=PRESET), icon=":material/info:")
    st.stop()
if last != specs:
    st.info(t("x_stale"), icon=":material/sync_problem:")

records = views.guarded(cache.with_progress, cache.sweep, t("x_progress", preset=PRESET), PRESET, last)
targets = {**NAMED_SIZES, t("x_custom_label", b=f"{billions:g}"): int(round(billions * 1e9))}
targets = dict(sorted(targets.items(), key=lambda kv: kv[1]))
rows = views.guarded(naive_extrapolation, records, targets)

st.plotly_chart(figures.extrapolation(rows), key="x_chart")
st.caption(t("x_chart_caption", preset=PRESET))
st.subheader(t("x_table"))
views.table(tables.extrapolation_frame(rows), key="x_table")
st.caption(t("x_table_caption"))
