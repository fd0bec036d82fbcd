"""No raw identifier is shown as a label: every page, in English and in Chinese, after runs that draw every option
widget and every task metric, shows options and metrics under the labels qcore/labels.json gives them.

A tour collects what a person reads as a label: titles and headings, widget labels, help and the choices a widget
offers, metric cards, table column headers (dataframes and the report's Markdown tables), chart titles, axis titles
and legends, markdown and captions. The tour fails where any of them equals an option name or metric key, or
contains one written in snake_case (`qat_lr`, `same_top`, `perplexity_ref`) or as an axis key (`task.kl`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache

import pytest
from streamlit.testing.v1 import AppTest

import qcore
from qcore import METHODS, Method, RTNConfig, quantize_rtn
from qcore.labels import REF_SUFFIX, metric_keys, metric_label, option_label
from tests.conftest import ROOT

TIMEOUT = 300  # seconds; the machine is shared (never asserted as a speed)
SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
LABELLED = ("selectbox", "radio", "multiselect", "number_input", "toggle", "button", "button_group", "text_input",
            "checkbox", "slider", "select_slider", "file_uploader", "download_button")  # fmt: skip
TASK_MODELS = {"charlm": "int2", "digits-small": "rtn"}  # a language model and a classifier: every task card


@lru_cache(maxsize=1)
def task_keys() -> frozenset[str]:
    """The task metric keys the tour's models produce (as measured, not as labels.json lists them)."""
    models = [qcore.load_model(name) for name in TASK_MODELS]
    return frozenset(k for model in models for k in model.task(model.tensors, model.tensors))


def known_identifiers() -> set[str]:
    """Option names of every registered method, the task metric keys the models produce, and every metric key
    labels.json lists, each with its _ref twin."""
    options = {o.name for m in METHODS.values() for o in m.options()}
    return options | task_keys() | {k for key in metric_keys() for k in (key, key + REF_SUFFIX)}


def raw_in(text: str, known: set[str]) -> set[str]:
    """The identifiers `text` shows raw: all of it equal to one, or one in snake_case or as 'task.NAME' within."""
    text = (text or "").strip()
    hits = {w for w in SNAKE.findall(text) if w in known} | {k for k in known if f"task.{k}" in text}
    return hits | ({text} if text in known else set())


def table_headers(markdown: str) -> list[str]:
    """The header row of every Markdown table (the line above a |---| rule)."""
    lines = markdown.splitlines()
    return [a for a, b in zip(lines, lines[1:], strict=False) if b.startswith("|---")]


def chart_texts(chart) -> list[str]:
    spec = json.loads(chart.proto.spec)
    layout = spec.get("layout", {})
    texts = [(layout.get("title") or {}).get("text")]
    texts += [(v.get("title") or {}).get("text") for k, v in layout.items() if k.startswith(("xaxis", "yaxis"))]
    return [x for x in texts + [tr.get("name") for tr in spec.get("data", [])] if x]


def widget_texts(at: AppTest) -> list[str]:
    out = []
    for kind in LABELLED:
        for w in at.get(kind):
            out += [w.proto.label, getattr(w.proto, "help", "")]
            if kind == "button_group":
                out += [o.content for o in w.proto.options]
            elif hasattr(w, "options"):
                out += list(w.options)
    return out


def shown(at: AppTest) -> list[str]:
    """What a person reads as a label or a heading on the page just drawn."""
    out = [e.value for e in (*at.title, *at.header, *at.subheader, *at.caption, *at.markdown)]
    out += widget_texts(at)
    out += [x for m in at.metric for x in (m.label, m.proto.help)]
    out += [str(c) for d in at.dataframe for c in d.value.columns]
    out += [h for m in at.markdown for h in table_headers(m.value)]
    return out + [x for c in at.get("plotly_chart") for x in chart_texts(c)]


@dataclass
class Tour:
    at: AppTest
    seen: list[tuple[str, str]] = field(default_factory=list)  # (where, text)

    def run(self, where: str, widget=None) -> Tour:
        """Run the app (through `widget` when one was just set or clicked) and note what it shows."""
        (widget if widget is not None else self.at).run()
        assert not self.at.exception, (where, self.at.exception)
        self.seen += [(where, text) for text in shown(self.at)]
        return self

    def page(self, name: str) -> Tour:
        self.at.switch_page(f"app_pages/{name}.py")
        return self.run(name)


def tour(lang: str) -> Tour:
    """Every page in `lang`: each method's options in the sidebar, runs with task metrics on Quantize, and a small
    sweep, scaling table and report, so that every kind of label has been drawn."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.radio(key="lang").set_value(lang)
    trip = Tour(at).run("start")
    for method in METHODS:  # every option widget of every method
        trip.run(f"sidebar {method}", at.selectbox(key="method").set_value(method))
    for preset, method in TASK_MODELS.items():
        at.selectbox(key="preset").set_value(preset)
        at.selectbox(key="method").set_value(method)
        trip.run(f"quantize {preset} {method}", at.button(key="q_run").click())
    for preset in TASK_MODELS:  # a small sweep on each: every task metric as an axis and a column
        trip.run(f"compare {preset}", at.selectbox(key="preset").set_value(preset)).page("compare")
        for key, value in (("c_bits", [2]), ("c_groups", [0]), ("c_clip", [False]), ("c_baselines", ["int8"])):
            at.multiselect(key=key).set_value(value)
        trip.run(f"compare sweep {preset}", at.button(key="c_run").click())
        for axis in axis_keys(at.button_group(key="c_y")):  # each axis draws the chart under its own title
            trip.run(f"compare {preset} axis {axis}", at.button_group(key="c_y").set_value(axis))
    trip.page("scaling")
    at.multiselect(key="s_presets").set_value(["small"])
    at.multiselect(key="s_methods").set_value(["int8", "rtn"])
    trip.run("scaling table", at.button(key="s_run").click())
    trip.page("extrapolate")
    trip.page("report")
    at.multiselect(key="r_presets").set_value(["small"])
    at.multiselect(key="r_methods").set_value(["int8"])
    return trip.run("report built", at.button(key="r_run").click())


def axis_keys(control) -> list[str]:
    """The raw values behind the Compare page's axis choices (the control shows only their labels)."""
    candidates = ["weight_cosine", "output_cosine", "synthetic_output_cosine"]
    candidates += [f"task.{k}" for key in metric_keys() for k in (key, key + REF_SUFFIX)]
    return [k for k in candidates if control.format_func(k) in control.options]


@pytest.fixture(scope="module", params=["en", "zh"])
def toured(request) -> tuple[str, Tour]:
    return request.param, tour(request.param)


def test_no_page_shows_a_raw_identifier_as_a_label(toured):
    lang, trip = toured
    known = known_identifiers()
    raw = sorted({(where, text[:160], *sorted(hits)) for where, text in trip.seen if (hits := raw_in(text, known))})
    assert not raw, f"{lang}: {raw}"


def test_the_tour_drew_every_option_and_every_task_metric_under_its_label(toured):
    """The tour is not vacuous: each option widget and task card it was meant to draw was drawn, labelled in the
    chosen language (Chinese labels differ from the English ones)."""
    lang, trip = toured
    texts = {text for _, text in trip.seen}
    missing = [(m.name, o.name) for m in METHODS.values() for o in m.options() if o.label.heading(lang) not in texts]
    assert not missing, missing
    cards = {metric_label(k).heading(lang) for k in task_keys() if not k.endswith(REF_SUFFIX)}
    assert len(cards) == 7 and cards <= texts, (
        cards - texts
    )  # top1, nll, same_class, logit_mse, perplexity, kl, same_top
    if lang == "zh":
        same = [o.name for m in METHODS.values() for o in m.options() if o.label.heading("zh") == o.label.heading()]
        assert not same, same


@dataclass(frozen=True)
class UnlabelledConfig:
    bits: int = field(default=4, metadata={"choices": (2, 4)})
    step_rate: float = 0.5  # an option qcore/labels.json does not describe


def quantize_unlabelled(W, cfg: UnlabelledConfig, *, H=None, progress=None):
    return quantize_rtn(W, RTNConfig(bits=cfg.bits))


def test_an_option_without_a_label_is_caught(monkeypatch):
    """A method registered without labels for its options shows the raw name, and the check says so."""
    monkeypatch.setitem(qcore.METHODS, "unlabelled", Method("unlabelled", "a test method", quantize_unlabelled,
                                                            UnlabelledConfig))  # fmt: skip
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    trip = Tour(at).run("sidebar unlabelled", at.selectbox(key="method").set_value("unlabelled"))
    hits = {h for _, text in trip.seen for h in raw_in(text, known_identifiers())}
    assert hits == {"step_rate"}
    assert not option_label("step_rate").known and option_label("bits").known


def test_the_check_reads_identifiers_as_a_person_would():
    known = known_identifiers()
    assert raw_in("qat_lr", known) == {"qat_lr"} and raw_in("damp", known) == {"damp"}
    assert raw_in("Results: charlm · seq (qat_lr=0.0001)", known) == {"qat_lr"}
    assert raw_in("perplexity_ref (lower is better)", known) == {"perplexity_ref"}
    assert raw_in("task.kl", known) == {"kl"}
    assert not raw_in("Damping (× mean of diag(H))", known) and not raw_in("Perplexity, unquantized", known)
    assert not raw_in("blocks.0.attn.qkv.weight", known)  # a tensor name is data, not a label
