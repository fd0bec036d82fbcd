"""Report: the CLI's Markdown report for the scaling runs, previewed and downloadable, in the chosen language."""

import streamlit as st

from qcore import PRESETS
from qcore.analysis.report import render_markdown, rows_to_csv
from ui import cache, views
from ui.i18n import lang, t
from ui.sidebar import method_options, selection

selection()
st.title(t("r_title"))
st.caption(t("r_intro"))

default = (tuple(PRESETS), tuple((m, method_options(m)) for m in ("int8", "int2")))
last = st.session_state.get("s_last")
if last is None:
    st.info(t("r_start"), icon=":material/info:")
    if not st.button(t("r_run"), key="r_run", type="primary", icon=":material/description:"):
        st.stop()
    last = views.remember_run("s_last", True, default)

rows = views.guarded(cache.with_progress, cache.scaling, t("s_progress"), *last)
presets, specs = last
st.caption(t("r_basis", presets=", ".join(presets), methods=", ".join(m for m, _ in specs)))
md = views.guarded(render_markdown, rows, lang())
csv = views.guarded(lambda: rows_to_csv(rows))

c1, c2, _ = st.columns([1, 1, 3])
name = "report.md" if lang() == "en" else f"report.{lang()}.md"
c1.download_button(
    t("r_dl_md"), md, name, "text/markdown", key="r_dl_md", icon=":material/download:", on_click="ignore"
)
c2.download_button(
    t("r_dl_csv"), csv, "report.csv", "text/csv", key="r_dl_csv", icon=":material/table:", on_click="ignore"
)
with st.container(border=True):
    st.markdown(md)
