"""The sidebar every page shares: language, model, method and the method's options (read from the registry).

It is rendered by app.py before the page runs, so its widgets exist on every page and keep their values.
Option widgets are keyed per method (`opt_<method>_<option>`), so each method remembers its own options.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import streamlit as st

from qcore import METHODS, ModelRef, QcoreError, get_method
from qcore.api.specs import Options, as_options
from qcore.format import fmt_bytes
from qcore.methods.registry import Option
from ui import models, urlstate
from ui.i18n import LANGS, carry_choices, choice_labels, lang, t, t_or

DEFAULT_PRESET, DEFAULT_METHOD = "large", "int2"  # the demo default: INT2 on the largest model


@dataclass(frozen=True)
class Selection:
    method: str
    options: Options  # the options the user may set, as sorted (name, value) pairs
    error: str | None = None  # why the options are invalid, or None
    ref: ModelRef | None = ModelRef("preset", DEFAULT_PRESET)  # None: no model chosen yet (an empty upload)

    @property
    def valid(self) -> bool:
        return self.error is None

    @property
    def model_label(self) -> str:
        return self.ref.label if self.ref else ""


@dataclass(frozen=True)
class Offer:
    """What the sidebar's widgets offer. It is gathered before the app draws anything (on a fresh server that
    takes a while), so the widgets then appear together: none is on screen while the script is still busy."""

    params: dict[str, int]  # built-in model name -> parameter count, in model_names() order
    server: list[str]  # files in the server's weights folder (empty when it is off)


def offer() -> Offer:
    return Offer(models.catalog(), models.server_choices())


def render(offered: Offer) -> Selection:
    """Draw the sidebar and return (and remember) the user's selection."""
    urlstate.restore(list(offered.params), offered.server)  # a fresh session opens the selection its link names
    with st.sidebar:
        st.radio(t("sb_lang"), list(LANGS), format_func=LANGS.get, key="lang", horizontal=True, on_change=carry_choices)
        notes = urlstate.show_notes()  # what the link asked for that could not be restored
        ref = _model_source(offered)
        methods = list(METHODS)
        method = st.selectbox(
            t("sb_method"), methods, index=methods.index(DEFAULT_METHOD), key="method", help=t("sb_method_help")
        )
        st.caption(method_summary(method))
        options = {}
        for opt in get_method(method).options():
            value = _option_widget(method, opt)
            if not opt.fixed:
                options[opt.name] = value
        if any(opt.fixed for opt in get_method(method).options()):
            st.caption(t("sb_fixed_note", method=method))
        error = None
        try:
            get_method(method).make_config(**options)
        except QcoreError as e:
            error = str(e)
            st.error(t("sb_bad_options", msg=error))
    sel = Selection(method, as_options(options), error, ref)
    st.session_state["selection"] = sel
    urlstate.publish(st.session_state.get("source", "preset"), ref.name if ref else "", method, sel.options, notes)
    return sel


def _model_source(offered: Offer) -> ModelRef | None:
    """Preset, the session's own upload, or (when QCORE_WEIGHTS_DIR is set) a file in the server's folder."""
    server = offered.server
    sources = ["preset", "upload", *(["server"] if server else [])]
    labels = choice_labels("source", {s: t(f"src_{s}") for s in sources})
    source = st.radio(t("sb_source"), sources, key="source", format_func=labels, horizontal=True)
    if source == "preset":
        models.clear_upload()
        presets = list(offered.params)  # the synthesized presets, then the models trained on real data
        preset = st.selectbox(
            t("sb_model"), presets, index=presets.index(DEFAULT_PRESET), key="preset",
            format_func=choice_labels("preset", preset_labels(offered.params)), persist_state="session",
        )  # fmt: skip
        st.caption(models.model_caption(preset, offered.params[preset]))
        return ModelRef("preset", preset)
    if source == "server":
        models.clear_upload()
        rel = st.selectbox(t("sb_server"), server, key="server_file", help=t("sb_server_help"))
        try:
            return models.server_ref(rel)
        except QcoreError as e:
            st.error(t("err_source", msg=str(e)), icon=":material/error:")
            return None
    return _upload()


def _upload() -> ModelRef | None:
    limit = fmt_bytes(models.upload_limit())
    uploaded = st.file_uploader(
        t("sb_upload"), key="upload", help=t("sb_upload_help", limit=limit), accept_multiple_files=True,
    )  # fmt: skip
    if not uploaded:
        models.clear_upload()
        st.caption(t("sb_upload_caption", limit=limit))
        return None
    with st.spinner(t("sb_reading", name=models.upload_name(uploaded))):
        up = models.accept_upload(uploaded)
    if up.error:
        st.error(t("err_upload", msg=up.error), icon=":material/error:")
        return None
    st.caption(t("sb_upload_ok", params=f"{up.model.params:,}", n=len(up.model.tensors)))
    if up.skipped:
        st.caption(t("sb_upload_skipped", names=", ".join(up.skipped)))
    if up.older:
        st.caption(t("sb_upload_older", names=", ".join(up.older), name=up.name))
    return up.ref


def selection() -> Selection:
    """Every page starts here: the selection the sidebar drew in this run."""
    return st.session_state.get("selection") or Selection(DEFAULT_METHOD, ())


def method_options(method: str) -> Options:
    """The options the user set for `method` in the sidebar (its defaults where untouched)."""
    out = {}
    for opt in get_method(method).options():
        if not opt.fixed:
            out[opt.name] = st.session_state.get(option_key(method, opt.name), opt.default)
    return as_options(out)


def option_key(method: str, name: str) -> str:
    return f"opt_{method}_{name}"


def preset_labels(params: dict[str, int]) -> dict[str, str]:
    """Option labels, fixed when the widget is drawn (format functions must not read session state)."""
    return {name: t("sb_preset_label", name=name, params=f"{n:,}") for name, n in params.items()}


def method_summary(name: str) -> str:
    return t_or(f"method_{name}", get_method(name).summary)


def _option_widget(method: str, opt: Option) -> Any:
    """One widget for one registry option, chosen by its type; a fixed option is shown disabled. Its label (with
    the unit) and its help (a one-line definition) come from the registry, in the chosen language."""
    kw: dict[str, Any] = {
        "key": option_key(method, opt.name),
        "disabled": opt.fixed,
        "help": opt.label.definition(lang()) or None,
        "persist_state": "session",  # a method keeps its options while another one is selected
    }
    label = opt.label.heading(lang())
    if opt.choices:
        choices = list(opt.choices)
        index = choices.index(opt.default) if opt.default in choices else 0
        return st.selectbox(label, choices, index=index, **kw)
    if isinstance(opt.default, bool):
        return st.toggle(label, value=opt.default, **kw)
    if isinstance(opt.default, int):
        step = 32 if opt.name == "group_size" else 1
        return int(st.number_input(label, min_value=0, value=opt.default, step=step, **kw))
    if isinstance(opt.default, float):  # a step a tenth of the default's decade: 0.01 for 0.1, 1e-5 for 1e-4
        step = 10.0 ** math.floor(math.log10(abs(opt.default))) / 10 if opt.default else 0.1
        return float(st.number_input(label, value=opt.default, step=step, format="%g", **kw))
    return st.text_input(label, value=str(opt.default), **kw)
