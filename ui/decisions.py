"""What a user decides with: the quality verdict in words (its band, the evidence it came from, the thresholds it
was judged against, all from qcore.measure.verdict), and why Run is off when a run could not mean anything."""

from __future__ import annotations

from qcore.measure.feasible import Blocker
from qcore.measure.verdict import BASES, THRESHOLDS, WEIGHT_COSINE_EDGES, Threshold
from ui.i18n import band, t
from ui.tables import metric_value


def verdict_text(rec: dict) -> str:
    """'poor · judged on perplexity, KL, same-top': the band and the evidence it came from."""
    return t("verdict_from", band=band(rec["quality"]), basis=t(f"basis_{rec.get('quality_basis', 'weight_cosine')}"))


def verdict_help(rec: dict) -> str:
    """The help popover: this run's evidence with its bands, then every threshold the verdict reads."""
    found = rec.get("quality_evidence") or {}
    seen = [
        t("verdict_item", metric=t(f"vm_{m}"), value=value_text(m, e["value"]), band=band(e["band"]))
        for m, e in found.items()
    ]
    lines = [
        t("verdict_help_run", band=band(rec["quality"]), items="; ".join(seen) or t("na")),
        "",
        t("verdict_help_rule"),
    ]
    for basis, metrics in BASES.items():
        for m in metrics:
            lines.append(threshold_line(m, THRESHOLDS[m], t(f"vsrc_{basis}")))
    cos = " / ".join(f"> {e:g}" for e in WEIGHT_COSINE_EDGES)
    lines.append(t("verdict_help_line", metric=t("vm_weight_cosine"), edges=cos, source=t("vsrc_weight_cosine")))
    return "\n".join(lines)


def threshold_line(metric: str, th: Threshold, source: str) -> str:
    sign = "≥" if th.higher_is_better else "≤"
    edges = " / ".join(f"{sign} {edge_text(th, e)}" for e in th.edges)
    return t("verdict_help_line", metric=t(f"vm_{metric}"), edges=edges, source=source)


def edge_text(th: Threshold, e: float) -> str:
    if th.unit == "ratio":
        return f"{e * 100:g}%"
    return t("nats", value=f"{e:g}") if th.unit == "nats" else f"{e:g}"


def value_text(metric: str, v: float) -> str:
    """A verdict figure in its unit: a share in %, a perplexity increase signed, a KL in nats, a cosine as is."""
    if metric == "ppl_increase":
        return f"{v:+.1%}"
    th = THRESHOLDS.get(metric)
    if th is not None and th.unit == "ratio":
        return f"{v:.1%}"
    if th is not None and th.unit == "nats":
        return t("nats", value=f"{v:.4f}")
    return f"{v:.4f}"


def blocker_text(b: Blocker) -> str:
    """Why Run is off, in the chosen language (qcore's English line where no translation exists)."""
    if b.reason == "no_tensors":
        kept = ", ".join(t("q_block_item", role=t(f"role_{d}"), n=n) for d, n in b.values.items())
        return t("q_block_no_tensors", kept=kept)
    if b.reason == "below_floor":
        v = b.values
        return t("q_block_below_floor", target=f"{v['target']:g}", floor=f"{v['floor']:.3f}", bits=v["bits"])
    return b.message


def ranking_axes(records: list[dict], axes: list[str]) -> list[str]:
    """The accuracy axes that can rank configurations. A task key ending in '_ref' is the FP16 model's own value
    (reference-only), and over two or more records an axis with one value everywhere is a constant: neither can tell
    two recipes apart, so neither is offered. Weight cosine, the default axis, always stays."""
    out = []
    for key in axes:
        values = {metric_value(r, key) for r in records} - {None}
        constant = len(records) >= 2 and len(values) <= 1
        if key == "weight_cosine" or not (key.endswith("_ref") or constant):
            out.append(key)
    return out
