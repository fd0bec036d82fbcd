"""The sidebar every page shares: language, model, method and the method's options (read from the registry).

It is rendered by app.py before the page runs, so its widgets exist on every page and keep their values.
Option widgets are keyed per method (`opt_<method>_<option>`), so each method remembers its own options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from qcore import METHODS, PRESETS, QcoreError, get_method, load_preset
from ui.cache import Options, as_options
from ui.i18n import LANGS, t, t_or

DEFAULT_PRESET, DEFAULT_METHOD = "large", "int2"  # the demo default: INT2 on the largest model


@dataclass(frozen=True)
class Selection:
    preset: str
    method: str
    options: Options  # the options the user may set, as sorted (name, value) pairs
    error: str | None = None  # why the options are invalid, or None

    @property
    def valid(self) -> bool:
        return self.error is None


def render() -> Selection:
    """Draw the sidebar and return (and remember) the user's selection."""
    with st.sidebar:
        st.radio(t("sb_lang"), list(LANGS), format_func=LANGS.get, key="lang", horizontal=True)
        presets = list(PRESETS)
        preset = st.selectbox(
            t("sb_model"), presets, index=presets.index(DEFAULT_PRESET), key="preset", format_func=preset_labels().get
        )
        st.caption(t("sb_model_caption", params=f"{load_preset(preset).params:,}"))
        methods = list(METHODS)
        method = st.selectbox(
            t("sb_method"), methods, index=methods.index(DEFAULT_METHOD), key="method", help=t("sb_method_help")
        )
        st.caption(method_summary(method))
        options = {}
        for opt in get_method(method).options():
            value = _option_widget(method, opt)
            if not opt["fixed"]:
                options[opt["name"]] = value
        if any(opt["fixed"] for opt in get_method(method).options()):
            st.caption(t("sb_fixed_note", method=method))
        error = None
        try:
            get_method(method).make_config(**options)
        except QcoreError as e:
            error = str(e)
            st.error(t("sb_bad_options", msg=error))
    sel = Selection(preset, method, as_options(options), error)
    st.session_state["selection"] = sel
    return sel


def selection() -> Selection:
    """Every page starts here: the selection the sidebar drew in this run.

    Streamlit serves a folder called pages/ in its legacy multipage mode until st.navigation has run once
    in the process: a deep link on a fresh server (and every AppTest run after the first) then executes the
    bare page file, without app.py and its sidebar. Leave that mode and rerun the same page through app.py.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False  # what st.navigation itself sets
        st.rerun()
    return st.session_state.get("selection") or Selection(DEFAULT_PRESET, DEFAULT_METHOD, ())


def method_options(method: str) -> Options:
    """The options the user set for `method` in the sidebar (its defaults where untouched)."""
    out = {}
    for opt in get_method(method).options():
        if not opt["fixed"]:
            out[opt["name"]] = st.session_state.get(option_key(method, opt["name"]), opt["default"])
    return as_options(out)


def option_key(method: str, name: str) -> str:
    return f"opt_{method}_{name}"


def preset_labels() -> dict[str, str]:
    """Option labels, fixed when the widget is drawn (format functions must not read session state)."""
    return {name: t("sb_preset_label", name=name, params=f"{load_preset(name).params:,}") for name in PRESETS}


def method_summary(name: str) -> str:
    return t_or(f"method_{name}", get_method(name).summary)


def _option_widget(method: str, opt: dict) -> Any:
    """One widget for one registry option, chosen by its type; a fixed option is shown disabled."""
    name, default = opt["name"], opt["default"]
    kw: dict[str, Any] = {
        "key": option_key(method, name),
        "disabled": opt["fixed"],
        "help": t_or(f"opt_{name}_help", opt["help"]) or None,
        "persist_state": "session",  # a method keeps its options while another one is selected
    }
    label = t_or(f"opt_{name}", name)
    if opt["choices"]:
        choices = list(opt["choices"])
        return st.selectbox(label, choices, index=choices.index(default) if default in choices else 0, **kw)
    if isinstance(default, bool):
        return st.toggle(label, value=default, **kw)
    if isinstance(default, int):
        step = 32 if name == "group_size" else 1
        return int(st.number_input(label, min_value=0, value=default, step=step, **kw))
    if isinstance(default, float):
        return float(st.number_input(label, value=default, step=0.1, format="%.2f", **kw))
    return st.text_input(label, value=str(default), **kw)
