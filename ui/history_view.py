"""The Run history page's sections: the table with its CSV download, and two runs side by side (headline figures,
per-layer figures, and the levels of one group of a chosen layer)."""

from __future__ import annotations

import streamlit as st

from qcore import Model, RunResult
from ui import cache, figures, history, models, tables
from ui.guard import guarded
from ui.history import Entry
from ui.i18n import choice_labels, t
from ui.widgets import table

PAIR_METRICS = ("weight_cosine", "sqnr_db")


def history_table(runs: list[Entry]) -> None:
    """The history, newest last, and its CSV (the same table, numbers unformatted)."""
    df = history.frame(runs)
    table(df, key="h_table", height=min(38 + 35 * len(df), 560))
    c1, c2, c3 = st.columns([1, 1, 3], vertical_alignment="center")
    c1.download_button(
        t("h_csv"), history.csv_bytes(df), "qlab-history.csv", "text/csv", key="h_csv", icon=":material/download:",
        help=t("h_csv_help"), on_click="ignore",
    )  # fmt: skip
    c2.button(t("h_clear"), key="h_clear", icon=":material/delete:", on_click=history.clear)
    c3.caption(t("h_count", n=len(runs), max=history.HISTORY_MAX))


def pick_pair(runs: list[Entry]) -> tuple[Entry, Entry]:
    """Two pickers, A and B (the second-newest and the newest run at first)."""
    by = {e.n: e for e in runs}
    labels = {n: history.pick_label(e) for n, e in by.items()}
    numbers = list(by)
    c1, c2 = st.columns(2)
    picked = []
    for col, key, default in ((c1, "h_a", numbers[-2]), (c2, "h_b", numbers[-1])):
        if st.session_state.get(key, default) not in by:
            st.session_state[key] = default  # a run cleared from the history: start again from the default
        n = col.selectbox(
            t(f"{key}_label"), numbers, index=numbers.index(default), key=key, format_func=choice_labels(key, labels),
            persist_state="session",
        )  # fmt: skip
        picked.append(by[n])
    return picked[0], picked[1]


def side_by_side(a: Entry, b: Entry) -> None:
    """The two runs' headline figures, per-layer figures (one chart, a trace each, and a table), and levels."""
    if a.n == b.n:
        st.info(t("h_same"), icon=":material/compare_arrows:")
        return
    names = [history.run_name(a), history.run_name(b)]
    st.subheader(t("h_kpis"))
    kpis = history.kpi_frame(a, b)
    st.dataframe(kpis, hide_index=True, key="h_kpi_table", height=38 + 35 * len(kpis))  # every row, no scrolling
    st.subheader(t("h_layers"))
    metric = st.segmented_control(
        t("h_layer_metric"), list(PAIR_METRICS), default="weight_cosine", required=True, key="h_metric",
        format_func=choice_labels("h_metric", {"weight_cosine": t("y_weight_cosine"), "sqnr_db": t("col_sqnr_db")}),
        persist_state="session",
    )  # fmt: skip
    st.plotly_chart(figures.layer_pair([a.record, b.record], names, metric), key="h_pair_chart")
    df = history.layers_frame(a, b)
    config = {
        c: st.column_config.NumberColumn(format="%.6f" if t("col_cosine") in c else "%.2f") for c in df.columns[1:]
    }
    st.dataframe(df, hide_index=True, column_config=config, key="h_layers_table")
    level_histograms(a, b)


def fetch(e: Entry) -> tuple[RunResult, Model] | None:
    """The run's full result (from the run cache; computed again if it was evicted) and its model, or None when
    the model is no longer open in this session (an upload that was closed)."""
    if not models.available(e.spec.model):
        return None
    model = models.model_for(e.spec.model)
    label = t("q_progress", preset=e.spec.model.label, method=e.spec.method)
    return guarded(cache.with_progress, cache.quantize, label, e.spec, _model=model), model


def level_histograms(a: Entry, b: Entry) -> None:
    """One layer's levels in each run: row `row`'s first group (the same weights, whatever each run's group size)."""
    st.subheader(t("h_hist"))
    got = [fetch(e) for e in (a, b)]
    names = [la["name"] for e in (a, b) for la in e.record["layers"]]
    names = [n for n in dict.fromkeys(names) if any(g and tables.has_levels(g[0], n) for g in got)]
    if not names:
        st.caption(t("h_hist_none"))
        return
    c1, c2 = st.columns(2)
    if st.session_state.get("h_layer", names[-1]) not in names:
        st.session_state["h_layer"] = names[-1]
    name = c1.selectbox(t("q_layer"), names, index=len(names) - 1, key="h_layer", persist_state="session")
    rows = min(tables.layer_shape(g[0], name)[0] for g in got if g and tables.has_levels(g[0], name))
    if st.session_state.get("h_row", 0) >= rows:
        st.session_state["h_row"] = 0
    row = int(c2.number_input(t("q_row", n=rows - 1), 0, rows - 1, key="h_row", persist_state="session"))
    st.caption(t("h_hist_caption", row=row))
    for side, col, e, g in zip("ab", st.columns(2), (a, b), got, strict=True):
        with col:
            st.markdown(f"**{history.pick_label(e)}**")
            if g is None:
                st.info(t("h_hist_closed", run=history.run_name(e)), icon=":material/link_off:")
            elif not tables.has_levels(g[0], name):
                st.caption(t("h_hist_no_levels", run=history.run_name(e)))
            else:
                view = guarded(tables.layer_view, g[0], g[1], name, row, 0)
                st.plotly_chart(figures.histogram(view), key=f"h_hist_{side}")
