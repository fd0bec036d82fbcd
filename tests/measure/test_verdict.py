"""The quality verdict: task metrics decide where a model has them, against documented edges; weight cosine only
where nothing better exists."""

import json
import math
import subprocess
import sys

import pytest

from qcore.measure.metrics import quality_band
from qcore.measure.verdict import THRESHOLDS, evidence, verdict
from tests.conftest import ROOT

# llama.cpp's perplexity scoreboard, "LLaMA 2 vs. LLaMA 3 Quantization comparison" (tools/perplexity/README.md):
# (mean PPL ratio, mean KLD, same top p) per model and type, and the band each group should read.
LLAMA_CPP = [
    ("L3 8b q8_0", 1.000425, 0.001355, 0.97674, "excellent"),
    ("L2 7b q8_0", 1.000689, 0.000369, 0.98846, "excellent"),
    ("L3 8b q6_K", 1.003490, 0.005452, 0.96031, "excellent"),
    ("L2 7b q6_K", 1.002406, 0.002098, 0.97520, "excellent"),
    ("L3 8b q4_K_M", 1.028160, 0.031273, 0.91901, "good"),
    ("L2 7b q4_K_M", 1.014242, 0.012686, 0.94665, "good"),
    ("L2 7b q2_K", 1.107955, 0.108903, 0.85584, "acceptable"),
    ("L3 8b q2_K", 1.564849, 0.445132, 0.71138, "poor"),
]


def lm_task(ratio: float, kl: float, same_top: float, ref: float = 6.0) -> dict:
    return {"perplexity": ratio * ref, "perplexity_ref": ref, "kl": kl, "same_top": same_top}


@pytest.mark.parametrize(("name", "ratio", "kl", "same_top", "band"), LLAMA_CPP, ids=[r[0] for r in LLAMA_CPP])
def test_llama_cpp_scoreboard_types_read_as_their_group(name, ratio, kl, same_top, band):
    v = verdict(0.5, lm_task(ratio, kl, same_top))  # a weight cosine that would read poor: it is not used
    assert (v.band, v.basis) == (band, "perplexity")


def test_the_reported_defect_reads_poor_from_its_perplexity():
    """charlm, mixed at 2.75 bpw: weight cosine 0.958403 (excellent on cosine) while perplexity rose 19%."""
    task = {"perplexity": 6.8098, "perplexity_ref": 5.7159, "kl": 0.158398, "same_top": 0.7827}
    v = verdict(0.958403, task)
    assert quality_band(0.958403) == "excellent"
    assert (v.band, v.basis) == ("poor", "perplexity")
    assert v.evidence["ppl_increase"]["value"] == pytest.approx(6.8098 / 5.7159 - 1)
    assert {m: e["band"] for m, e in v.evidence.items()} == {"ppl_increase": "poor", "kl": "poor", "same_top": "poor"}


def test_the_worst_metric_decides():
    v = verdict(0.99, lm_task(1.001, 0.2, 0.99))  # perplexity and same-top excellent, KL poor
    assert v.band == "poor"
    assert [e["band"] for e in v.evidence.values()] == ["excellent", "poor", "excellent"]


def test_a_perplexity_that_falls_is_excellent():
    assert verdict(0.9, lm_task(0.99, 0.001, 0.99)).band == "excellent"


@pytest.mark.parametrize(
    ("metric", "value", "band"),
    [
        ("ppl_increase", 0.01, "excellent"),  # edges are inclusive
        ("ppl_increase", 0.0100001, "good"),
        ("ppl_increase", 0.05, "good"),
        ("ppl_increase", 0.15, "acceptable"),
        ("ppl_increase", 0.1500001, "poor"),
        ("kl", 0.0, "excellent"),
        ("kl", 0.06, "acceptable"),
        ("same_top", 0.95, "excellent"),
        ("same_top", 0.9499, "good"),
        ("same_top", 0.80, "acceptable"),
        ("same_top", 0.7999, "poor"),
        ("top1_retained", 1.0, "excellent"),
        ("top1_retained", 0.999, "excellent"),  # MLPerf's high-accuracy target
        ("top1_retained", 0.99, "good"),  # MLPerf's target
        ("top1_retained", 0.9899, "acceptable"),
        ("top1_retained", 0.9699, "poor"),
        ("spearman", 0.985, "good"),
        ("embedding_cosine", 0.94, "poor"),
    ],
)
def test_edges(metric, value, band):
    assert THRESHOLDS[metric].band(value) == band


def test_every_threshold_is_ordered_from_strict_to_loose():
    for th in THRESHOLDS.values():
        assert list(th.edges) == sorted(th.edges, reverse=th.higher_is_better), th.metric


def test_a_classifier_is_judged_on_the_top1_it_keeps():
    v = verdict(0.99, {"top1": 0.962, "top1_ref": 0.974, "logit_mse": 2.77})
    assert v.basis == "top1"
    assert v.evidence["top1_retained"]["value"] == pytest.approx(0.962 / 0.974)
    assert v.band == "acceptable"  # 98.8% of FP16's top-1: below MLPerf's 99%


def test_an_encoder_is_judged_on_its_embeddings():
    v = verdict(0.99, {"embedding_cosine": 0.995, "spearman": 0.97, "nn_agreement": 0.9})
    assert (v.basis, v.band) == ("embeddings", "acceptable")
    assert list(v.evidence) == ["embedding_cosine", "spearman"]


@pytest.mark.parametrize("cos", [0.99, 0.95, 0.92, 0.86, 0.5])
def test_without_task_metrics_the_reference_bands_on_weight_cosine_remain(cos):
    for task in (None, {}, {"logit_mse": 0.1}):
        v = verdict(cos, task)
        assert (v.band, v.basis) == (quality_band(cos), "weight_cosine")
        assert v.evidence == {"weight_cosine": {"value": cos, "band": quality_band(cos)}}


def test_missing_or_broken_figures_are_not_evidence():
    assert evidence({"perplexity": 6.0}) == {}  # no reference perplexity: no increase
    assert evidence({"perplexity": math.nan, "perplexity_ref": 5.0, "same_top": 0.9}) == {"same_top": 0.9}
    assert evidence({"top1": 0.5, "top1_ref": 0.0}) == {}
    assert evidence({"kl": True}) == {}
    assert verdict(0.97, {"same_top": 0.7}).band == "poor"  # what is there still decides


def test_the_cli_line_prints_the_records_verdict():
    """`run`'s summary line keeps its format; its band is the record's verdict (digits: top-1, not weight cosine)."""
    args = [sys.executable, "-m", "qcore", "run", "--preset", "digits-small", "--method", "int2"]
    rec = json.loads(subprocess.run([*args, "--json"], cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    line = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert rec["quality_basis"] == "top1"
    assert f"weight cosine {rec['weight_cosine']:.6f} ({rec['quality']}), SQNR" in line
