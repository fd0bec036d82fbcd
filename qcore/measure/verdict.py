"""The quality verdict of a run: one band (excellent / good / acceptable / poor) from the best evidence it has.

Evidence, best first (the first that a record's task metrics can fill is used):
- "perplexity": a language model's own outputs on held-out text. Perplexity increase relative to the FP16 model
  (perplexity / perplexity_ref - 1), KL(P_ref || P) in nats per token, and the same-top-token rate.
- "top1": a classifier's held-out top-1 accuracy, as the share of the FP16 model's top-1 it keeps (top1 / top1_ref).
- "embeddings": an encoder's sentence embeddings. Their mean cosine to the FP16 model's embeddings, and the
  Spearman correlation of all pairwise similarities (what STS benchmarks score).
- "weight_cosine": only where none of the above exists. These are the reference report's bands on weight cosine
  (DESIGN.md): excellent > 0.95, good 0.90-0.95, acceptable 0.85-0.90, poor < 0.85.

Each metric gets a band from THRESHOLDS. The verdict is the worst band among the metrics present, because a recipe
is only as good as its weakest evidence.

Where the edges come from:
- Language models: llama.cpp's perplexity tool scoreboards (tools/perplexity/README.md: LLaMA 2 7B and LLaMA 3 8B on
  Wikitext-2, every quantization type against FP16). Its near-lossless types (q8_0, q6_K) keep the perplexity
  increase under 0.4%, KL under 0.006 and same-top above 96%. q4_K_M, the usual recommended default, stays within
  1.4-2.8% / 0.013-0.031 / 92-95%. The q3_K types reach about 10% / 0.10. q2_K goes beyond that (11-56%, KL 0.11-0.45,
  same-top 71-86%). The edges (1% / 0.01 / 95%, 5% / 0.05 / 90%, 15% / 0.15 / 80%) fall between those groups, so
  that q8_0 and q6_K read excellent, q4_K_M good, q3_K acceptable and LLaMA 3's q2_K poor.
- Classifiers: MLPerf Inference's accuracy targets. A submission must keep 99% of the FP32 reference accuracy
  (good), or 99.9% in the high-accuracy variants (excellent). The 97% line between acceptable and poor is the lab's own.
- Encoders: no published convention. The lab's own edges are 0.99 / 0.98 / 0.95 on both figures, as strict as the
  perplexity edges: a 1% change of the similarity ranking is invisible to retrieval, and a 5% change is not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .metrics import QUALITY_BANDS, quality_band

BANDS = ("excellent", "good", "acceptable", "poor")  # best first


@dataclass(frozen=True)
class Threshold:
    """The band edges of one metric: the least (or most) a value may reach for excellent, good, acceptable."""

    metric: str  # the evidence key (see evidence())
    edges: tuple[float, float, float]  # excellent, good, acceptable limits; beyond the last is poor
    higher_is_better: bool
    unit: str  # "ratio" (a share, shown in %), "nats" (per token) or "corr" (a cosine or a correlation)

    def band(self, value: float) -> str:
        for name, edge in zip(BANDS, self.edges, strict=False):
            if (value >= edge) if self.higher_is_better else (value <= edge):
                return name
        return "poor"


THRESHOLDS: dict[str, Threshold] = {
    t.metric: t
    for t in (
        Threshold("ppl_increase", (0.01, 0.05, 0.15), False, "ratio"),  # llama.cpp scoreboards (module docstring)
        Threshold("kl", (0.01, 0.05, 0.15), False, "nats"),
        Threshold("same_top", (0.95, 0.90, 0.80), True, "ratio"),
        Threshold("top1_retained", (0.999, 0.99, 0.97), True, "ratio"),  # MLPerf Inference's 99.9% / 99% targets
        Threshold("embedding_cosine", (0.99, 0.98, 0.95), True, "corr"),  # the lab's own
        Threshold("spearman", (0.99, 0.98, 0.95), True, "corr"),
    )
}
BASES = {  # evidence kind -> the metrics that make it, in the order a page lists them
    "perplexity": ("ppl_increase", "kl", "same_top"),
    "top1": ("top1_retained",),
    "embeddings": ("embedding_cosine", "spearman"),
}
WEIGHT_COSINE_EDGES = tuple(edge for _, edge in QUALITY_BANDS[:3])  # excellent > 0.95, good > 0.90, acceptable > 0.85


@dataclass(frozen=True)
class Verdict:
    band: str  # one of BANDS
    basis: str  # a key of BASES, or "weight_cosine"
    evidence: dict[str, dict]  # metric -> {"value": float, "band": str}, in BASES order


def evidence(task: dict | None) -> dict[str, float]:
    """The figures the bands read, derived from a record's task metrics (those it lacks are left out)."""
    task = task or {}
    out = {}
    ppl, ref = task.get("perplexity"), task.get("perplexity_ref")
    if _finite(ppl) and _finite(ref) and ref > 0:
        out["ppl_increase"] = ppl / ref - 1.0
    for key in ("kl", "same_top", "embedding_cosine", "spearman"):
        if _finite(task.get(key)):
            out[key] = float(task[key])
    top1, top1_ref = task.get("top1"), task.get("top1_ref")
    if _finite(top1) and _finite(top1_ref) and top1_ref > 0:
        out["top1_retained"] = top1 / top1_ref
    return out


def verdict(weight_cosine: float, task: dict | None) -> Verdict:
    """The band of a run from its best evidence: task metrics where it has them, else weight cosine."""
    found = evidence(task)
    for basis, metrics in BASES.items():
        present = [m for m in metrics if m in found]
        if present:
            bands = {m: {"value": found[m], "band": THRESHOLDS[m].band(found[m])} for m in present}
            worst = max((b["band"] for b in bands.values()), key=BANDS.index)
            return Verdict(worst, basis, bands)
    band = quality_band(weight_cosine)
    return Verdict(band, "weight_cosine", {"weight_cosine": {"value": weight_cosine, "band": band}})


def _finite(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
