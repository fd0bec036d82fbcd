"""Figures of the Extrapolate page: size by tensor kind, and the accuracy fit from measured layers to targets.

Measured points are solid markers; everything computed for an architecture is dashed or open and named
"extrapolated", never "measured".
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from qcore import Policy
from qcore.analysis.accuracy import selected
from qcore.analysis.archs import KINDS
from qcore.format import GIB, fmt_bytes, fmt_ratio
from ui.extrap import sqnr_to_cosine
from ui.figures import PALETTE, layout
from ui.i18n import t

KIND_COLORS = {"embedding": "#f59e0b", "attention": "#2563eb", "mlp": "#60a5fa", "norm": "#10b981",
               "head": "#a855f7", "container": "#9ca3af"}  # fmt: skip
PANELS_PER_ROW = 3  # architectures side by side; more wrap onto another row
MAX_TOTALS = 5  # bars in a panel that still get their size written on top (more would overlap)
HOVER = "<br>n = %{x:,}<br>%{y:.4f}<extra></extra>"  # appended to a translated label (no braces to format)


def sizes_by_kind(rows: list[dict]) -> go.Figure:
    """Per architecture (a panel each, own y axis, at most PANELS_PER_ROW a row), one stacked bar per variant
    (FP16, then each method), split by tensor kind; the file size and ratio on top while a panel has room for
    them (at most MAX_TOTALS bars), else on hover."""
    archs = list(dict.fromkeys(r["arch"] for r in rows))
    ncols = min(len(archs), PANELS_PER_ROW)
    nrows = math.ceil(len(archs) / ncols)
    height = 460 + 340 * (nrows - 1)
    fig = make_subplots(
        rows=nrows, cols=ncols, subplot_titles=archs, horizontal_spacing=0.06,
        vertical_spacing=110 / (height - 110) if nrows > 1 else 0.1,
    )  # fmt: skip
    shown: set[str] = set()
    for i, arch in enumerate(archs):
        at = {"row": i // ncols + 1, "col": i % ncols + 1}
        rs = [r for r in rows if r["arch"] == arch]
        variants = [("FP16", rs[0]["fp16_bytes_by_kind"], rs[0]["fp16_bytes"], "")]
        variants += [
            (r["label"], r["bytes_by_kind"], r["quantized_bytes"], fmt_ratio(r["compression_ratio"])) for r in rs
        ]
        labels = [v[0] for v in variants]
        parts = {k: [v[1][k] / GIB for v in variants] for k in KINDS}
        parts["container"] = [(v[2] - sum(v[1].values())) / GIB for v in variants]
        for kind, ys in parts.items():
            if not any(y > 0 for y in ys):
                continue
            fig.add_bar(
                x=labels, y=ys, name=t(f"kind_{kind}"), marker_color=KIND_COLORS[kind], legendgroup=kind,
                showlegend=kind not in shown, **at,
                hovertemplate=f"{arch} · %{{x}}<br>{t(f'kind_{kind}')}: %{{y:.3f}} GiB<extra></extra>",
            )  # fmt: skip
            shown.add(kind)
        totals = [v[2] / GIB for v in variants]
        text = [f"{fmt_bytes(v[2])}<br>{v[3]}" if v[3] else fmt_bytes(v[2]) for v in variants]
        fig.add_scatter(
            x=labels, y=totals, mode="text" if len(variants) <= MAX_TOTALS else "markers", showlegend=False,
            text=text, textposition="top center", textfont={"size": 11}, marker={"opacity": 0},
            hovertemplate=f"{arch} · %{{x}}<br>%{{text}}<extra></extra>", **at,
        )  # fmt: skip
        fig.update_yaxes(range=[0, max(totals) * 1.25], **at)
    fig.update_layout(barmode="stack")
    fig = layout(fig, t("fig_kind_title"), "", "", height=height).update_layout(margin={"t": 70})
    return fig.update_yaxes(title_text=t("ax_gib"), col=1)


def accuracy_fit(fits: dict, archs: dict, policy: Policy, metric: str) -> go.Figure:
    """Per-layer SQNR (or cosine) against row length, log axis: presets measured (solid), the fitted trend
    (dashed) with its uncertainty band, and each target architecture's row lengths on it (extrapolated)."""
    targets = {
        name: sorted({math.prod(x.shape[1:]) for x in arch.tensors() if selected(policy, x)})
        for name, arch in archs.items()
    }
    conv = (lambda db: db) if metric == "sqnr_db" else sqnr_to_cosine
    fig = go.Figure()
    measured_max = 0
    for i, (label, fit) in enumerate(fits.items()):
        if isinstance(fit, str):
            continue
        color = PALETTE[i % len(PALETTE)]
        ns = [n for n, _, _ in fit.points]
        measured_max = max(measured_max, *ns)
        top = max([*ns, *(n for v in targets.values() for n in v)])
        grid = [min(ns) * (top / min(ns)) ** (k / 80) for k in range(81)]
        hi = [conv(fit.sqnr_at(n) + fit.band_db) for n in grid]
        lo = [conv(fit.sqnr_at(n) - fit.band_db) for n in grid]
        fig.add_scatter(
            x=grid + grid[::-1], y=hi + lo[::-1], fill="toself", fillcolor=_rgba(color, 0.15), line={"width": 0},
            name=t("fig_fit_band", label=label), hoverinfo="skip", legendgroup=label,
        )  # fmt: skip
        fig.add_scatter(
            x=grid, y=[conv(fit.sqnr_at(n)) for n in grid], mode="lines", line={"color": color, "dash": "dash"},
            name=t("fig_fit_line", label=label), legendgroup=label, hoverinfo="skip",
        )  # fmt: skip
        fig.add_scatter(
            x=ns, y=[conv(s) for _, _, s in fit.points], mode="markers", marker={"size": 10, "color": color},
            name=t("fig_fit_measured", label=label), legendgroup=label,
            hovertemplate=t("fig_fit_hover_measured", label=label) + HOVER,
        )  # fmt: skip
        for name, lengths in targets.items():
            fig.add_scatter(
                x=lengths, y=[conv(fit.sqnr_at(n)) for n in lengths], mode="markers", legendgroup=label,
                marker={"symbol": "diamond-open", "size": 11, "color": color, "line": {"width": 2}},
                name=t("fig_fit_target", label=label, arch=name), showlegend=False,
                hovertemplate=t("fig_fit_hover_target", label=label, arch=name) + HOVER,
            )  # fmt: skip
    if measured_max:
        fig.add_vline(x=measured_max, line={"color": "#9ca3af", "dash": "dot"})
        fig.add_annotation(
            x=math.log10(measured_max), y=1, yref="paper", text=t("fig_fit_edge"), showarrow=False, xanchor="right",
            yanchor="top", font={"size": 10, "color": "#6b7280"},
        )  # fmt: skip
    ticks = [2**k for k in range(4, 17)]  # row lengths are mostly powers of two: label them plainly
    fig.update_xaxes(type="log", tickvals=ticks, ticktext=[f"{n:,}" for n in ticks])
    y = "SQNR (dB)" if metric == "sqnr_db" else t("y_weight_cosine")
    return layout(fig, t("fig_fit_title", y=y), t("ax_row_len"), y, height=480)


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"
