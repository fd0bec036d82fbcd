"""Run history: every Quantize run of this session in one table (downloadable as CSV), and two runs side by side."""

import streamlit as st

from ui import history
from ui.history_view import history_table, pick_pair, side_by_side
from ui.i18n import t

st.title(t("h_title"))
st.caption(t("h_intro"))
runs = history.entries()
if not runs:
    st.info(t("h_empty"), icon=":material/history:")
    st.page_link("app_pages/quantize.py", label=t("h_go_quantize"), icon=":material/compress:")
    st.stop()

history_table(runs)
st.subheader(t("h_compare"))
if len(runs) < 2:
    st.info(t("h_need_two"), icon=":material/compare_arrows:")
    st.stop()
a, b = pick_pair(runs)
side_by_side(a, b)
