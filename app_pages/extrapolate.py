"""Extrapolate: architecture-exact sizes, extrapolated accuracy and memory for real models
(the same figures as `python -m qcore extrapolate --json`), beside the reference report's predictions."""

import streamlit as st

from qcore import Policy, Target
from qcore.api.specs import EXTRAPOLATE_POLICY
from ui import extrap
from ui import extrap_figures as xfig
from ui import extrap_memory as xmem
from ui.cache import with_progress
from ui.guard import guarded, remember_run
from ui.i18n import choice_labels, t
from ui.sidebar import selection
from ui.widgets import table

selection()
st.title(t("x_title"))
st.caption(t("x_intro"))

choices = extrap.method_choices()
with st.container(border=True):
    c1, c2 = st.columns(2)
    archs = c1.multiselect(
        t("x_archs"), extrap.catalog(), default=extrap.DEFAULT_ARCHS, key="x_archs", persist_state="session"
    )
    picked = c2.multiselect(
        t("x_methods"), list(choices), default=extrap.DEFAULT_METHODS, key="x_methods", help=t("x_methods_help"),
        persist_state="session", format_func=extrap.choice_labels(choices).get,
    )  # fmt: skip
    c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
    custom = c1.segmented_control(
        t("x_custom"), ["none", "config", "params"], default="none", required=True, key="x_custom_kind",
        format_func=choice_labels("x_custom_kind", {k: t(f"x_custom_{k}") for k in ("none", "config", "params")}),
        persist_state="session",
    )  # fmt: skip
    default = EXTRAPOLATE_POLICY  # the command line's and the Quantize page's: one policy everywhere
    q_emb = c2.toggle(
        t("pol_emb"), default.quantize_embeddings, key="x_q_emb", help=t("x_emb_help"), persist_state="session"
    )
    q_head = c3.toggle(
        t("pol_head"), default.quantize_head, key="x_q_head", help=t("x_head_help"), persist_state="session"
    )
    targets = [Target("catalog", name) for name in archs]
    if custom == "config":
        c1, c2 = st.columns(2)
        upload = c1.file_uploader(t("x_config_file"), type=["json"], key="x_config_file")
        pasted = c2.text_area(t("x_config_text"), key="x_config_text", height=120, placeholder='{"hidden_size": ...}')
        text = upload.getvalue().decode("utf-8", errors="replace") if upload is not None else pasted.strip()
        targets += [Target("config", text, upload.name.rsplit(".", 1)[0] if upload else "custom")] if text else []
    elif custom == "params":
        billions = st.number_input(
            t("x_params"), min_value=0.001, max_value=10_000.0, value=3.0, step=0.5, format="%.3f", key="x_params",
            help=t("x_params_help"), persist_state="session",
        )  # fmt: skip
        targets.append(Target("params", int(round(billions * 1e9))))
    specs = tuple(choices[k] for k in picked)
    now = extrap.ExtrapolationRun(tuple(targets), specs, Policy(quantize_head=q_head, quantize_embeddings=q_emb))
    clicked = st.button(
        t("x_run"), key="x_run", type="primary", icon=":material/play_arrow:", disabled=not (targets and specs)
    )
last = remember_run("x_last", clicked, now)
if last is None:
    st.info(t("x_start"), icon=":material/info:")
    st.stop()
if last != now:
    st.info(t("x_stale"), icon=":material/sync_problem:")

result = guarded(with_progress, extrap.extrapolate, t("x_progress"), last, _hint="hint_extrapolate")
rows = result["rows"]

st.subheader(t("x_sizes"))
sizes = extrap.sizes_frame(rows)
table(sizes, key="x_table")
st.caption(t("x_sizes_caption"))
xmem.csv_button(sizes, "x_csv_sizes", "extrapolate-sizes.csv", "x_csv_sizes")
for line in extrap.explanations(rows):
    st.markdown(line)
st.plotly_chart(xfig.sizes_by_kind(rows), key="x_kind_chart")

st.subheader(t("x_fit"))
metric = st.segmented_control(
    t("x_fit_y"), ["sqnr_db", "weight_cosine"], default="sqnr_db", required=True, key="x_fit_y",
    format_func=choice_labels("x_fit_y", {"sqnr_db": "SQNR (dB)", "weight_cosine": t("y_weight_cosine")}),
    persist_state="session",
)  # fmt: skip
st.plotly_chart(xfig.accuracy_fit(result["fits"], result["archs"], last.policy, metric), key="x_fit_chart")
st.markdown("\n".join(f"- {line}" for line in extrap.backtest_lines(result["fits"])))
st.caption(t("x_fit_caption"))
xmem.csv_button(
    extrap.accuracy_frame(rows, result["fits"]), "x_csv_accuracy", "extrapolate-accuracy.csv", "x_csv_accuracy"
)

st.subheader(t("x_memory"))
what_if = xmem.what_if_inputs()
memory = guarded(xmem.memory_frame, result, what_if)
xmem.show_memory(memory, key="x_memory_table")
if note := xmem.context_note(result, what_if):
    st.warning(note, icon=":material/warning:")
over = what_if.overhead
st.caption(t("x_memory_caption", pct=f"{over.pct:g}", fixed=f"{over.fixed_gib:g}"))
for line in xmem.gpu_notes(what_if):
    st.caption(line)
xmem.csv_button(memory, "x_csv_memory", "extrapolate-memory.csv", "x_csv_memory")

pairs = extrap.reference_rows(rows)
if pairs:
    st.subheader(t("x_reference"))
    reference = extrap.reference_frame(pairs)
    table(reference, key="x_reference_table")
    for line in extrap.reference_notes(pairs):
        st.markdown(f"- {line}")
    st.caption(t("x_reference_caption"))
    xmem.csv_button(reference, "x_csv_reference", "extrapolate-reference.csv", "x_csv_reference")
with st.expander(t("x_cli")):
    st.code(xmem.cli_lines(rows, what_if), language="bash")
