"""Axis and label helpers for the figures: log axes that always label at least three values, short layer names
that fit beside a bar, and per-column scaling for heatmaps. Pure functions of plain lists; no Plotly, no Streamlit.
"""

from __future__ import annotations

import math

PAD_DECADES = 0.1  # a log axis reaches this far beyond the data (in decades), or 5% of its span when wider
MAX_TICKS = 10
MAX_NAME = 40  # characters of a layer name shown on an axis; the full name is in the hover
MANTISSAS = ((1,), (1, 3), (1, 2, 5))  # tick steps per decade, coarsest first (evenly spread on a log axis)


def tick_text(value: float) -> str:
    """10000 -> '10k', 2500000 -> '2.5M', 0.002 -> '0.002'."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= div:
            return f"{value / div:g}{suffix}"
    return f"{value:g}"


def log_axis(values: list[float]) -> dict:
    """Settings for a log axis over `values` (the positive ones) with at least three labelled ticks, evenly spread:
    the coarsest of decades, 1-3 or 1-2-5 steps that gives three inside the data's range (padded a little); else
    the range widens to the 1-2-5 ticks around the data. For `fig.update_xaxes(**log_axis(xs))`."""
    vals = [math.log10(v) for v in values if v is not None and v > 0]
    if not vals:
        return {"type": "log"}
    lo, hi = min(vals), max(vals)
    pad = max(0.05 * (hi - lo), PAD_DECADES)
    for mantissas in MANTISSAS:
        ticks = [v for v in _ladder(lo, hi, mantissas) if lo - pad <= math.log10(v) <= hi + pad]
        if len(ticks) >= 3:
            ticks = ticks[:: math.ceil(len(ticks) / MAX_TICKS)]  # many decades: every other (or third) one
            return _log_settings(ticks, [lo - pad, hi + pad])
    ladder = _ladder(lo, hi, MANTISSAS[-1])
    logs = [math.log10(v) for v in ladder]
    i = max(k for k, x in enumerate(logs) if x <= lo + 1e-9)  # the 1-2-5 ticks at or around the data
    j = min(k for k, x in enumerate(logs) if x >= hi - 1e-9)
    while j - i < 2:  # widen on the side where the data sits nearer the edge
        i, j = (i - 1, j) if lo - logs[i] < logs[j] - hi else (i, j + 1)
    ticks = ladder[i : j + 1]
    edge = 0.05 * (math.log10(ticks[-1]) - math.log10(ticks[0]))
    return _log_settings(ticks, [math.log10(ticks[0]) - edge, math.log10(ticks[-1]) + edge])


def _ladder(lo: float, hi: float, mantissas: tuple[int, ...]) -> list[float]:
    """m x 10^e for every m in `mantissas`, from two decades below 10^lo to two above 10^hi, ascending."""
    return [m * 10.0**e for e in range(math.floor(lo) - 2, math.ceil(hi) + 3) for m in mantissas]


def _log_settings(ticks: list[float], log_range: list[float]) -> dict:
    return {"type": "log", "range": log_range, "tickvals": ticks, "ticktext": [tick_text(v) for v in ticks]}


def short_names(names: list[str], limit: int = MAX_NAME) -> list[str]:
    """Layer names as an axis shows them: a '.weight' every name ends with dropped, and a name longer than `limit`
    cut to its last dot-separated parts after an ellipsis (the end of a name tells layers apart). Names stay unique:
    where cutting would merge two, they keep their full length."""
    out = list(names)
    if out and all(n.endswith(".weight") and len(n) > len(".weight") for n in out):
        out = [n[: -len(".weight")] for n in out]
    cut = [n if len(n) <= limit else _tail(n, limit) for n in out]
    return cut if len(set(cut)) == len(cut) else out


def _tail(name: str, limit: int) -> str:
    """'…' and the last dot-separated parts of `name` that fit in `limit` characters (or its last characters)."""
    parts = name.split(".")
    kept: list[str] = []
    while parts and len(".".join([parts[-1], *kept])) <= limit - 1:
        kept.insert(0, parts.pop())
    return "…" + (".".join(kept) if kept else name[-(limit - 1) :])


def scale_columns(z: list[list[float | None]]) -> list[list[float | None]]:
    """Each column of a (rows, cols) grid mapped to [0, 1] by its own minimum and maximum (a constant column to
    0.5); missing cells stay None."""
    cols = list(zip(*z, strict=True)) if z else []
    spans = []
    for col in cols:
        present = [v for v in col if v is not None]
        spans.append((min(present), max(present)) if present else (0.0, 0.0))
    return [
        [
            None if v is None else (v - lo) / (hi - lo) if hi > lo else 0.5
            for v, (lo, hi) in zip(row, spans, strict=True)
        ]
        for row in z
    ]
