"""Report: the CLI's Markdown report for presets x methods, previewed and downloadable, in the chosen language."""

import streamlit as st

from qcore import METHODS, PRESETS
from qcore.analysis.report import render_markdown, rows_to_csv
from qcore.api.specs import MethodSpec, ReportSpec
from ui import cache
from ui.guard import guarded, remember_run
from ui.i18n import lang, t
from ui.sidebar import method_options, selection

TWO_BIT = (MethodSpec.make("gptq", {"bits": 2, "group_size": 64}), MethodSpec.make("e8p"))  # calibrated, vector

selection()
st.title(t("r_title"))
st.caption(t("r_intro"))

built = st.session_state.get("r_last") is not None or st.session_state.get("r_run")  # a report, or one on its way
with st.expander(t("r_inputs")) if built else st.container(border=True):  # once built, the report leads the page
    c1, c2 = st.columns(2)
    presets = c1.multiselect(
        t("s_presets"), list(PRESETS), default=list(PRESETS), key="r_presets", persist_state="session"
    )
    methods = c2.multiselect(
        t("s_methods"), list(METHODS), default=["int8", "int2"], key="r_methods", help=t("s_methods_help"),
        persist_state="session",
    )  # fmt: skip
    two_bit = st.toggle(t("r_two_bit"), False, key="r_two_bit", help=t("r_two_bit_help"), persist_state="session")
    specs = tuple(MethodSpec(m, method_options(m)) for m in methods)
    specs += TWO_BIT if two_bit else ()
    now = cache.ScalingRun(tuple(p for p in PRESETS if p in presets), specs)
    clicked = st.button(
        t("r_run"), key="r_run", type="primary", icon=":material/description:", disabled=not (now.presets and specs)
    )
last = remember_run("r_last", clicked, now)
if last is None:
    st.info(t("r_start"), icon=":material/info:")
    st.stop()

rows = guarded(cache.with_progress, cache.scaling, t("s_progress"), last)
md = guarded(render_markdown, rows, lang())
csv = guarded(rows_to_csv, rows)
report = ReportSpec(last.presets, last.specs, lang())
methods = ", ".join(s.method for s in last.specs)
st.caption(t("r_basis", presets=", ".join(last.presets), methods=methods, cli=report.command_line()))

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
