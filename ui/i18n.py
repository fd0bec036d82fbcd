"""The text catalog: every label the dashboard shows, in English and 中文, kept as data in ui/text/LANG.json.

`t(key, **fields)` looks the key up in the language the sidebar chose (English where a translation is missing)
and fills in `{fields}`. `t_or(key, fallback)` is for texts the registry supplies (method summaries, option
help), which the catalog may translate.

A choice widget whose option labels are translated keeps its value through a language switch only if it is
re-set after the switch (Streamlit keys such a widget's state to its labels). `choice_labels(key, labels)` gives
the widget its format function and records the key, so the language radio re-sets exactly the widgets drawn
with translated labels (carry_choices): the list is derived from the widgets, not kept by hand.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import streamlit as st

LANGS = {"en": "English", "zh": "中文"}
TEXT_DIR = Path(__file__).resolve().parent / "text"
TRANSLATED: set[str] = set()  # keys of the choice widgets drawn with translated labels (see choice_labels)


@lru_cache(maxsize=len(LANGS))
def catalog(lang: str) -> dict[str, str]:
    """The catalog of `lang`, read once from ui/text/LANG.json."""
    return json.loads((TEXT_DIR / f"{lang}.json").read_text(encoding="utf-8"))


def lang() -> str:
    """The language the sidebar chose ('en' or 'zh')."""
    value = st.session_state.get("lang", "en")
    return value if value in LANGS else "en"


def t(key: str, **fields) -> str:
    text = catalog(lang()).get(key) or catalog("en")[key]
    return text.format(**fields) if fields else text


def t_or(key: str, fallback: str) -> str:
    """A catalog text where there is one (in the chosen language), else the registry's own text."""
    text = catalog(lang()).get(key)
    if text is None:
        text = catalog("en").get(key, fallback) if lang() == "en" else fallback
    return text


def band(name: str | None) -> str:
    return t(f"band_{name}") if name else t("na")


def choice_labels(key: str, labels: dict):
    """The format function of choice widget `key` whose option labels are `labels` (value -> translated text)."""
    TRANSLATED.add(key)
    return labels.get


def carry_choices() -> None:
    """on_change of the language radio: write each translated choice back, so it is shown in the new labels."""
    for key in TRANSLATED:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
