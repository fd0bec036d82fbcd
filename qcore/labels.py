"""What a person reads for a method option or a metric: a label, a unit and a one-line definition, in English and
Chinese, kept as data in qcore/labels.json (the one source: the registry, the CLI, the report and the dashboard
all read it).

The file has three parts. `options`: one entry per option name (`bits`, `group_size`, ...); an entry named
`METHOD.OPTION` (`nf4.group_size`) replaces some fields for that method only. `metrics`: one entry per record or
task metric key (`weight_cosine`, `perplexity`, ...), with `better` ("higher" or "lower"). `reference`: the
templates that turn a metric into its `NAME_ref` twin, the unquantized model's value.

Every entry holds `label`, `unit` (null for a pure number) and `help`, each as {"en": ..., "zh": ...}. A name the
file lacks gets a Label that shows the name itself: tests/ui/test_labels.py fails on any such label.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

LANGS = ("en", "zh")
REF_SUFFIX = "_ref"  # a task metric's twin measured on the unquantized model: perplexity_ref beside perplexity
LABELS_FILE = Path(__file__).resolve().parent / "labels.json"


def _pick(texts: Mapping[str, str] | None, lang: str) -> str | None:
    if texts is None:
        return None
    return texts.get(lang if lang in LANGS else "en") or texts.get("en")


@dataclass(frozen=True)
class Label:
    """The human face of one option or metric (each text {lang: str}; lang is "en" or "zh", English otherwise)."""

    name: str  # the identifier: the config field, flag stem, or record / task key
    label: Mapping[str, str] = field(hash=False)  # (the texts are compared, not hashed: a Label stays hashable)
    unit: Mapping[str, str] | None = field(hash=False)  # None for a pure number (a ratio, a count, a switch)
    help: Mapping[str, str] = field(hash=False)  # one line: what it is, and what 0 or a switch means
    better: str | None = None  # metrics: "higher" or "lower"; options: None
    known: bool = True  # False: labels.json lacks the name, and the label is the name itself

    def title(self, lang: str = "en") -> str:
        """'Code width'."""
        return _pick(self.label, lang)

    def unit_of(self, lang: str = "en") -> str | None:
        """'bits', or None."""
        return _pick(self.unit, lang)

    def heading(self, lang: str = "en") -> str:
        """The title with its unit: 'Code width (bits)', or the title alone."""
        unit = self.unit_of(lang)
        if not unit:
            return self.title(lang)
        return f"{self.title(lang)}（{unit}）" if lang == "zh" else f"{self.title(lang)} ({unit})"

    def definition(self, lang: str = "en") -> str:
        return _pick(self.help, lang)

    def described(self, lang: str = "en") -> str:
        """'Code width (bits): Bits per integer code: ...', as the CLI's help and listing print it."""
        return f"{self.heading(lang)}: {self.definition(lang)}"

    @property
    def lower_is_better(self) -> bool:
        return self.better == "lower"


@lru_cache(maxsize=1)
def _doc() -> dict:
    return json.loads(LABELS_FILE.read_text(encoding="utf-8"))


def _make(name: str, entry: Mapping, better: str | None = None) -> Label:
    return Label(name, entry["label"], entry.get("unit"), entry["help"], entry.get("better", better))


def _unknown(name: str) -> Label:
    return Label(name, {"en": name}, None, {"en": ""}, known=False)


def option_label(name: str, method: str | None = None) -> Label:
    """The label of option `name`, with the fields `METHOD.NAME` replaces for `method`."""
    options = _doc()["options"]
    if name not in options:
        return _unknown(name)
    entry = {**options[name], **(options.get(f"{method}.{name}", {}) if method else {})}
    return _make(name, entry)


def metric_label(key: str) -> Label:
    """The label of a record or task metric; 'x_ref' is x's label, marked as the unquantized model's value."""
    metrics = _doc()["metrics"]
    if key in metrics:
        return _make(key, metrics[key])
    base = key.removesuffix(REF_SUFFIX)
    if base == key or base not in metrics:
        return _unknown(key)
    of = metrics[base]
    ref = _doc()["reference"]
    label = {lang: ref["label"][lang].format(label=of["label"][lang]) for lang in LANGS}
    help_ = {lang: ref["help"][lang].format(help=of["help"][lang]) for lang in LANGS}
    return Label(key, label, of.get("unit"), help_, of.get("better"))


def option_names() -> list[str]:
    """Every option name the file describes (method-specific overrides left out)."""
    return [k for k in _doc()["options"] if "." not in k]


def method_overrides() -> list[tuple[str, str]]:
    """(method, option) for every `METHOD.OPTION` entry."""
    return [tuple(k.split(".", 1)) for k in _doc()["options"] if "." in k]


def metric_keys() -> list[str]:
    return list(_doc()["metrics"])
