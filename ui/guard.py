"""Page guards: errors as messages, never tracebacks; and what the last press of a Run button asked for."""

from __future__ import annotations

import logging
from collections.abc import Callable

import streamlit as st

from qcore import QcoreError
from ui.i18n import t

log = logging.getLogger("qlab")


def guarded(fn: Callable, *args, _hint: str = "hint_sidebar", **kwargs):
    """Call fn; on failure show what went wrong and what to do (`_hint`, a catalog key), then stop the page.

    Never a traceback: bad input (QcoreError) says what to change, anything else is logged as a bug.
    """
    try:
        return fn(*args, **kwargs)
    except QcoreError as e:
        st.error(t("err_input", msg=str(e), hint=t(_hint)), icon=":material/error:")
    except Exception as e:  # a bug, not bad input: log it for us, tell the user what to try
        log.exception("unexpected error in %s", getattr(fn, "__name__", fn))
        st.error(t("err_internal", kind=type(e).__name__, msg=str(e)), icon=":material/bug_report:")
    st.stop()


def remember_run(key: str, clicked: bool, value):
    """The inputs of the last run a button started (kept in session state under `key`), or None before any."""
    if clicked:
        st.session_state[key] = value
    return st.session_state.get(key)
