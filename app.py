"""Quantization lab: the dashboard's entry point. Shared sidebar, then the chosen page (see app_pages/)."""

import logging

import streamlit as st

from ui import sidebar
from ui.i18n import t

st.set_page_config(page_title="Quantization lab", page_icon=":material/compress:", layout="wide")

try:
    sidebar.render()  # before the page runs: its widgets exist on every page, so choices survive a page switch
except Exception as e:  # the pages fall back to the default selection
    logging.getLogger("qlab").exception("sidebar failed")
    st.sidebar.error(t("err_internal", kind=type(e).__name__, msg=str(e)), icon=":material/bug_report:")
pages = [
    st.Page(
        "app_pages/quantize.py", title=t("nav_quantize"), icon=":material/compress:", url_path="quantize", default=True
    ),
    st.Page("app_pages/scaling.py", title=t("nav_scaling"), icon=":material/trending_up:", url_path="scaling"),
    st.Page("app_pages/compare.py", title=t("nav_compare"), icon=":material/scatter_plot:", url_path="compare"),
    st.Page(
        "app_pages/extrapolate.py", title=t("nav_extrapolate"), icon=":material/open_in_full:", url_path="extrapolate"
    ),
    st.Page("app_pages/report.py", title=t("nav_report"), icon=":material/description:", url_path="report"),
]
page = st.navigation(pages)
try:
    page.run()
except Exception as e:  # the last guard: pages catch their own errors, but no traceback may reach the screen
    logging.getLogger("qlab").exception("page %s failed", page.title)
    st.error(t("err_internal", kind=type(e).__name__, msg=str(e)), icon=":material/bug_report:")
