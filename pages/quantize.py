"""Quantize (home): one preset, one method, live; then the figures, the layers, the levels and the bytes."""

import streamlit as st

from ui import cache, figures, tables, views
from ui.i18n import t
from ui.sidebar import method_summary, selection

sel = selection()
st.title(t("q_title"))
st.caption(t("q_intro"))

left, right = st.columns([3, 1], vertical_alignment="bottom")
left.markdown(t("q_choice", preset=sel.preset, method=sel.method, options=tables.options_text(sel.options)))
left.caption(method_summary(sel.method))
codec = right.segmented_control(
    t("q_codec"), ["none", "zstd"], default="none", required=True, key="q_codec", help=t("q_codec_help"),
    persist_state="session",
)  # fmt: skip
clicked = st.button(t("q_run"), key="q_run", type="primary", icon=":material/play_arrow:", disabled=not sel.valid)
last = views.remember_run("q_last", clicked, (sel.preset, sel.method, sel.options, codec))
if last is None:
    st.info(t("q_start"), icon=":material/info:")
    st.stop()
if last != (sel.preset, sel.method, sel.options, codec):
    st.info(t("q_stale"), icon=":material/sync_problem:")

preset, method, options, codec = last
label = t("q_progress", preset=preset, method=method)
res = views.guarded(cache.with_progress, cache.quantize, label, preset, method, options, codec)
rec = res.record

st.subheader(t("q_results", preset=preset, method=method, options=tables.options_text(options)))
views.kpi_cards(rec)
st.caption(t("q_policy", policy=rec["policy"], codec=codec))

st.subheader(t("q_layers"))
views.table(tables.layers_frame(rec), key="q_layers_table")
st.caption(t("q_layers_caption"))
st.plotly_chart(figures.layer_cosines(rec), key="q_layers_chart")

st.subheader(t("q_hist"))
st.caption(t("q_hist_caption"))
names = [la["name"] for la in rec["layers"]]
if names:
    c1, c2, c3 = st.columns(3)
    name = c1.selectbox(t("q_layer"), names, index=len(names) - 1, key="q_layer", persist_state="session")
    rows, groups = tables.layer_shape(res, name)
    for key, n in (("q_row", rows), ("q_group", groups)):  # keep a remembered index inside this layer
        if st.session_state.get(key, 0) >= n:
            st.session_state[key] = 0
    row = c2.number_input(t("q_row", n=rows - 1), 0, rows - 1, key="q_row", persist_state="session")
    group = c3.number_input(
        t("q_group", n=groups), 0, groups - 1, key="q_group", disabled=groups == 1, persist_state="session"
    )
    view = views.guarded(tables.layer_view, res, preset, name, int(row), int(group))
    st.plotly_chart(figures.histogram(view), key="q_hist_chart")
    st.markdown(t("q_hist_note", used=view["used"], n=len(view["levels"]), edge=tables.fmt_pct(view["edge_share"])))

st.subheader(t("q_size"))
st.plotly_chart(figures.breakdown(rec), key="q_breakdown_chart")
b = rec["breakdown"]
st.caption(
    t("q_size_caption", payload=tables.fmt_bytes(b["payload_bytes"]), meta=tables.fmt_bytes(b["metadata_bytes"]),
      fp16=tables.fmt_bytes(b["passthrough_bytes"]), container=tables.fmt_bytes(b["container_bytes"]),
      gain=tables.fmt_bytes(b["codec_gain_bytes"]), share=tables.fmt_pct(rec["metadata_share"]))
)  # fmt: skip

st.subheader(t("q_downloads"))
views.downloads(res, preset, method)
st.caption(t("q_cli"))
st.code(views.cli_command(preset, method, options, codec), language="bash")
