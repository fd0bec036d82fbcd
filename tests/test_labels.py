"""Every option and metric has a person's label: English and Chinese text, a unit or none, and a one-line
definition, kept once in qcore/labels.json; the registry, the CLI's `methods` and `run --help`, and the report all
read that text."""

from __future__ import annotations

import io
import re
from contextlib import redirect_stdout

import pytest
import torch

from qcore import METHODS, load_model
from qcore.analysis.report import render_markdown, scaling_rows, text
from qcore.cli import build_parser, main
from qcore.labels import REF_SUFFIX, method_overrides, metric_keys, metric_label, option_label, option_names
from qcore.models.charlm import lm_metrics
from qcore.models.digits import digits_task
from qcore.models.hf_eval import encoder_task

CJK = re.compile(r"[\u4e00-\u9fff]")
RECORD_METRICS = ("weight_cosine", "output_cosine", "synthetic_output_cosine")  # the Compare page's cosine axes


def produced_metric_keys() -> set[str]:
    """Every key the lab's task functions return, measured on small inputs (a classifier, a language model and a
    sentence encoder), plus the record's cosines."""
    g = torch.Generator().manual_seed(0)
    digits = load_model("digits-small")
    x = torch.randn(12, 64, generator=g)
    keys = set(digits_task(x, torch.arange(12) % 10, digits.tensors, digits.tensors))
    W = {"W": torch.randn(8, 8, generator=g)}
    lm = lambda tensors, ids: tensors["W"][ids]  # noqa: E731  # (B, T) token ids -> (B, T, 8) logits
    ids = torch.randint(0, 8, (2, 6), generator=g)
    keys |= set(lm_metrics(lm, ids, ids.roll(-1, 1), W, W))
    encode = lambda tensors, x: x @ tensors["W"]  # noqa: E731  # (B, 8) -> (B, 8) sentence embeddings
    keys |= set(encoder_task(encode, torch.randn(6, 8, generator=g), W, W))
    return keys | set(RECORD_METRICS)


def assert_complete(label, what: str) -> None:
    """English and Chinese label and definition, the Chinese written in Chinese; a unit in both or in neither."""
    assert label.known, f"{what}: qcore/labels.json has no entry"
    for lang in ("en", "zh"):
        assert label.title(lang) and label.definition(lang), f"{what}: no {lang} text"
    assert CJK.search(label.title("zh")) and CJK.search(label.definition("zh")), f"{what}: zh text is not Chinese"
    assert set(label.label) == set(label.help) == {"en", "zh"}, what
    assert label.unit is None or set(label.unit) == {"en", "zh"}, what


@pytest.mark.parametrize("method", list(METHODS))
def test_every_option_of_every_method_has_labels_in_both_languages(method):
    for opt in METHODS[method].options():
        assert_complete(opt.label, f"{method}.{opt.name}")
        assert opt.help == opt.label.definition("en")  # the registry carries the file's text
        assert opt in {opt}  # still a frozen, hashable value


def test_every_metric_key_a_model_produces_has_labels_and_a_direction():
    keys = produced_metric_keys()
    assert {"top1", "top1_ref", "perplexity", "kl", "same_top", "embedding_cosine", "nn_agreement"} <= keys
    for key in sorted(keys):
        label = metric_label(key)
        assert_complete(label, key)
        assert label.better in ("higher", "lower"), key
    assert metric_label("perplexity").lower_is_better and not metric_label("same_top").lower_is_better


def test_a_reference_twin_reads_as_the_unquantized_value():
    ref, base = metric_label("perplexity" + REF_SUFFIX), metric_label("perplexity")
    assert ref.title() == "Perplexity, unquantized" and ref.title("zh") == "未量化模型的困惑度"
    assert base.definition() in ref.definition() and ref.better == base.better
    assert not metric_label("bogus" + REF_SUFFIX).known


def test_the_file_holds_nothing_stale():
    """Each option entry belongs to a registered option, each per-method entry to a method that has it, and each
    metric entry to a key some model or record produces."""
    used = {o.name for m in METHODS.values() for o in m.options()}
    assert set(option_names()) == used
    for method, name in method_overrides():
        assert name in {o.name for o in METHODS[method].options()}, (method, name)
    assert set(metric_keys()) <= produced_metric_keys()


def test_a_method_override_changes_the_definition_only_for_that_method():
    assert option_label("group_size", "nf4").definition() != option_label("group_size", "rtn").definition()
    assert option_label("group_size", "nf4").title() == option_label("group_size").title() == "Group size"
    assert option_label("group_size", "rtn") == option_label("group_size")


def cli(*argv: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(list(argv)) == 0
    return out.getvalue()


def test_methods_lists_each_option_with_its_label_unit_and_definition():
    text = cli("methods")
    for m in METHODS.values():
        for opt in m.options():
            unit = f" ({opt.label.unit_of()})" if opt.label.unit_of() else ""
            assert f"{opt.label.title()}{unit}: {opt.help}" in text, (m.name, opt.name)


def test_run_help_uses_the_same_english_text_as_the_sidebar():
    run = next(a for a in build_parser()._actions if a.dest == "command").choices["run"]
    helps = {a.dest: a.help for a in run._actions}
    for name in {o.name for m in METHODS.values() for o in m.options() if not o.fixed}:
        label = option_label(name)
        assert helps[name].startswith(f"{label.heading()}: {label.definition()}; default "), name


@pytest.fixture(scope="module")
def task_rows() -> list[dict]:
    return scaling_rows(["digits-small", "charlm"], ["int8"])


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_reports_task_table_is_headed_by_labels(task_rows, lang):
    section = render_markdown(task_rows, lang).split(f"## {text(lang)['task_title']}")[1]
    lines = section.splitlines()
    header = next(a for a, b in zip(lines, lines[1:], strict=False) if b.startswith("|---"))
    heads = [h.strip() for h in header.strip("|").split("|")]
    keys = list(dict.fromkeys(k for r in task_rows for k in r["task"]))
    assert heads[-len(keys) :] == [metric_label(k).heading(lang) for k in keys]
    assert not set(keys) & set(heads)
    if lang == "zh":
        assert "困惑度" in heads and "KL 散度（奈特/词元）" in heads


def test_an_unknown_name_shows_itself_and_is_marked():
    label = option_label("no_such_option")
    assert not label.known and label.title("zh") == "no_such_option" and label.unit_of() is None
    assert option_label("bits").known
