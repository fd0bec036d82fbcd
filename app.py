"""Quantization lab: the dashboard's entry point. Shared sidebar, then the chosen page (see app_pages/)."""

import logging

import streamlit as st

from ui import sidebar
from ui.i18n import t

st.set_page_config(page_title="Quantization lab", page_icon=":material/compress:", layout="wide")

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
    st.Page("app_pages/history.py", title=t("nav_history"), icon=":material/history:", url_path="history"),
]


def sidebar_failed(e: Exception) -> None:  # the pages fall back to the default selection
    logging.getLogger("qlab").exception("sidebar failed")
    st.sidebar.error(t("err_internal", kind=type(e).__name__, msg=str(e)), icon=":material/bug_report:")


offered = None
try:
    offered = sidebar.offer()  # before anything is drawn: then the page list and the sidebar appear together
except Exception as e:
    sidebar_failed(e)
page = st.navigation(pages)  # before the sidebar: the page list tops it from the first paint, so nothing below moves
if offered is not None:
    try:
        sidebar.render(offered)  # before the page runs: its widgets exist on every page, so choices survive a switch
    except Exception as e:
        sidebar_failed(e)
try:
    page.run()
except Exception as e:  # the last guard: pages catch their own errors, but no traceback may reach the screen
    logging.getLogger("qlab").exception("page %s failed", page.title)
    st.error(t("err_internal", kind=type(e).__name__, msg=str(e)), icon=":material/bug_report:")
