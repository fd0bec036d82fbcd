"""The text catalogs are data: English and Chinese hold the same keys with the same {placeholders}, and the
choice widgets whose labels are translated are found from the widgets themselves."""

import re
import string

from streamlit.testing.v1 import AppTest

from qcore import METHODS
from tests.conftest import ROOT
from ui import i18n
from ui.i18n import catalog

TIMEOUT = 120


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def registry_keys() -> set[str]:
    """Texts the registry supplies in English (method summaries) that only the Chinese catalog needs. Option
    labels and help in both languages live in qcore/labels.json."""
    return {f"method_{m}" for m in METHODS}


def test_both_languages_have_the_same_keys_and_placeholders():
    en, zh = catalog("en"), catalog("zh")
    assert set(zh) - set(en) <= registry_keys(), "a Chinese text without an English one"
    assert registry_keys() <= set(zh), sorted(registry_keys() - set(zh))  # every method is summarised in Chinese
    assert set(en) <= set(zh), "an English text without a Chinese one"
    mismatched = {k: (fields(en[k]), fields(zh[k])) for k in en if fields(en[k]) != fields(zh[k])}
    assert not mismatched, mismatched


def ui_source() -> str:
    return "\n".join(
        p.read_text() for p in [*(ROOT / "ui").glob("*.py"), *(ROOT / "app_pages").glob("*.py"), ROOT / "app.py"]
    )


def test_every_key_the_code_asks_for_exists():
    used = set(re.findall(r"""\bt\(["']([a-z0-9_]+)["'](?!\s*\+)""", ui_source()))  # not a prefix: t("a_" + b)
    assert used, "the scan found no catalog keys"
    assert not used - set(catalog("en")), sorted(used - set(catalog("en")))


def test_every_key_in_the_catalogs_is_asked_for():
    """No dead text: each key is named in the code, or built there from a prefix (t(f"band_{name}"),
    t("s_trend_" + section)) or a suffix (t(f"{key}_label") with "h_a" a literal), or is a registry text."""
    src = ui_source()
    literal = set(re.findall(r'"([a-z0-9_]+)"', src)) | set(re.findall(r"'([a-z0-9_]+)'", src))
    prefixes = set(re.findall(r'\bt(?:_or)?\(f"([a-z0-9_]+)\{', src)) | set(re.findall(r"\bt\('([a-z0-9_]+)' \+", src))
    suffixes = set(re.findall(r'\bt\(f"\{[a-z_]+\}([a-z0-9_]+)"\)', src))
    assert prefixes and suffixes, "the scan found no built keys"

    def asked(key: str) -> bool:
        built = any(key.startswith(p) for p in prefixes) or any(key.removesuffix(s) in literal for s in suffixes)
        return key in literal or built

    for lang in ("en", "zh"):
        dead = sorted(k for k in catalog(lang) if not asked(k))
        assert not dead, f"{lang}: {dead}"


def test_translated_choices_are_derived_from_the_widgets_and_survive_a_language_switch():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.selectbox(key="q_sens_group").set_value(64).run()
    assert {"source", "preset", "q_sens_group", "q_sens_metric"} <= i18n.TRANSLATED  # registered as drawn
    at.radio(key="lang").set_value("zh").run()
    assert not at.exception
    assert at.selectbox(key="q_sens_group").value == 64  # the choice survived its labels changing
    assert at.selectbox(key="preset").value == "large"
