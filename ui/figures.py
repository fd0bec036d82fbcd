"""Plotly figure builders. Each takes records (or plain lists) and returns a go.Figure; labels come from ui.i18n."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.colors import qualitative

from qcore import METHODS
from qcore.analysis.reference import reference_row
from qcore.format import fmt_bytes, fmt_cos
from qcore.measure.metrics import lloyd_max, rd_bound
from ui.i18n import band, t
from ui.tables import axis_label, metric_value

PALETTE = qualitative.Plotly
BANDS = (  # (name, low, high, fill): the reference report's quality bands
    ("excellent", 0.95, 1.0, "rgba(22,163,74,0.10)"),
    ("good", 0.90, 0.95, "rgba(37,99,235,0.08)"),
    ("acceptable", 0.85, 0.90, "rgba(234,179,8,0.12)"),
    ("poor", -1.0, 0.85, "rgba(220,38,38,0.08)"),
)
PARTS = (  # size breakdown: (record key, label key, colour)
    ("payload_bytes", "part_payload", "#2563eb"),
    ("metadata_bytes", "part_metadata", "#f59e0b"),
    ("passthrough_bytes", "part_passthrough", "#10b981"),
    ("container_bytes", "part_container", "#9ca3af"),
)


def method_color(method: str) -> str:
    names = list(METHODS)
    return PALETTE[(names.index(method) if method in names else len(names)) % len(PALETTE)]


def layout(fig: go.Figure, title: str, x: str, y: str, height: int = 360) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 15}},
        xaxis_title=x,
        yaxis_title=y,
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 70},
        legend={"orientation": "h", "yref": "container", "yanchor": "bottom", "y": 0.0, "x": 0},
        hovermode="closest",
    )
    if (fig.layout.meta or {}).get("bands"):  # room for the band names right of the plot
        fig.update_layout(margin={"r": 80})
    return fig


def add_bands(fig: go.Figure, ys: list[float]) -> go.Figure:
    """Shade the quality bands behind a cosine axis and fit the axis to the data (and the band edges)."""
    lo = min([y for y in ys if y is not None] + [0.84]) - 0.01
    for name, low, high, fill in BANDS:
        fig.add_hrect(y0=max(low, lo), y1=min(high, 1.0), fillcolor=fill, line_width=0, layer="below")
        fig.add_annotation(
            x=1.005, xref="paper", xanchor="left", y=(max(low, lo) + min(high, 1.0)) / 2, yref="y",
            text=band(name), showarrow=False, font={"size": 10, "color": "#6b7280"},
        )  # fmt: skip
    fig.update_yaxes(range=[lo, 1.003])
    fig.update_layout(meta={"bands": True})
    return fig


def _by_method(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: r["params"]):
        out.setdefault(r["method"], []).append(r)
    return out


def _series(fig: go.Figure, rows: list[dict], key: str, fmt, show_ref: bool = False, scale: float = 1.0) -> None:
    for method, rs in _by_method(rows).items():
        color = method_color(method)
        fig.add_scatter(
            x=[r["params"] for r in rs], y=[r[key] * scale for r in rs], mode="lines+markers", name=method,
            line={"color": color, "width": 2}, marker={"size": 9},
            text=[f"{r['source']} · {method}: {fmt(r[key])}" for r in rs], hoverinfo="text",
        )  # fmt: skip
        refs = [(r, reference_row(r["source"], method)) for r in rs]
        refs = [(r, ref) for r, ref in refs if ref and key in ref]
        if show_ref and refs:
            fig.add_scatter(
                x=[r["params"] for r, _ in refs], y=[ref[key] for _, ref in refs], mode="markers",
                name=t("fig_reference", method=method), marker={"symbol": "circle-open", "size": 12, "color": color},
                text=[f"{r['source']} · {method} ({t('reference')}): {ref[key]}" for r, ref in refs], hoverinfo="text",
            )  # fmt: skip
    fig.update_xaxes(type="log", dtick=1)


def scaling_ratio(rows: list[dict]) -> go.Figure:
    fig = go.Figure()
    _series(fig, rows, "compression_ratio", lambda v: f"{v:.2f}x", show_ref=True)
    for method, rs in _by_method(rows).items():
        theo = rs[-1]["theoretical_ratio"]
        fig.add_hline(
            y=theo, line={"dash": "dot", "color": method_color(method)},
            annotation_text=t("fig_theoretical", method=method, value=f"{theo:.2f}x"), annotation_position="top left",
        )  # fmt: skip
    return layout(fig, t("fig_ratio_title"), t("ax_params"), t("ax_ratio"))


def scaling_cosine(rows: list[dict]) -> go.Figure:
    fig = go.Figure()
    _series(fig, rows, "weight_cosine", fmt_cos, show_ref=True)
    add_bands(fig, [r["weight_cosine"] for r in rows])
    return layout(fig, t("fig_cosine_title"), t("ax_params"), t("ax_cosine"))


def scaling_time(rows: list[dict]) -> go.Figure:
    fig = go.Figure()
    _series(fig, rows, "quant_seconds", lambda v: f"{v:.4f} s")
    fig.update_yaxes(type="log", dtick=1)
    threads = rows[0].get("threads") if rows else "?"
    return layout(fig, t("fig_time_title", threads=threads), t("ax_params"), t("ax_seconds"))


def scaling_metadata(rows: list[dict]) -> go.Figure:
    fig = go.Figure()
    _series(fig, rows, "metadata_share", lambda v: f"{v:.1%}", scale=100.0)
    return layout(fig, t("fig_meta_title"), t("ax_params"), t("ax_meta_pct"))


def layer_cosines(rec: dict) -> go.Figure:
    layers = rec["layers"]
    names = [la["name"] for la in layers]
    fig = go.Figure()
    fig.add_scatter(
        x=names, y=[la["weight_cosine"] for la in layers], mode="markers+text" if len(names) <= 12 else "markers",
        name=t("fig_measured"),
        marker={"size": 14 if len(names) <= 12 else 8, "color": "#2563eb"},
        text=[fmt_cos(la["weight_cosine"]) for la in layers],
        textposition="middle right", hovertemplate="%{x}: %{y:.6f}<extra></extra>",
    )  # fmt: skip
    pred = [la["predicted_cosine"] for la in layers]
    if any(p is not None for p in pred):
        fig.add_scatter(
            x=names, y=pred, mode="markers", name=t("fig_predicted"),
            marker={"symbol": "diamond-open", "size": 14, "color": "#111827", "line": {"width": 2}},
            hovertemplate="%{x}: %{y:.6f}<extra></extra>",
        )  # fmt: skip
    add_bands(fig, [la["weight_cosine"] for la in layers] + [p for p in pred if p is not None])
    fig.update_xaxes(range=[-0.4, len(names) - 0.4])
    return layout(fig, t("fig_layers_title"), t("ax_layer"), t("ax_cosine"), height=320)


def histogram(view: dict) -> go.Figure:
    """The group's weights with the 2**bits levels W_hat can take drawn over them (and how many use each)."""
    fig = go.Figure()
    fig.add_histogram(x=view["weights"], nbinsx=60, name=t("fig_weights"), marker_color="#93c5fd")
    total = max(sum(view["usage"]), 1)
    pairs = list(zip(view["levels"], view["usage"], strict=True))
    shapes = [  # set at once: add_vline per level re-validates every shape, quadratic in 2**bits
        {"type": "line", "x0": level, "x1": level, "y0": 0, "y1": 1, "xref": "x", "yref": "paper",
         "line": {"color": "#dc2626", "width": 2 if len(pairs) <= 16 else 1, "dash": "solid" if used else "dot"}}
        for level, used in pairs
    ]  # fmt: skip
    notes = [
        {"x": level, "y": 1.0, "yref": "paper", "yanchor": "bottom", "showarrow": False,
         "font": {"size": 10, "color": "#dc2626"}, "text": f"q={code}<br>{_share(used, total)}"}
        for code, (level, used) in enumerate(pairs)
    ] if view["bits"] <= 3 else []  # fmt: skip
    fig.update_layout(bargap=0.02, showlegend=False, shapes=shapes, annotations=notes)
    title = t("fig_hist_title", name=view["name"], row=view["row"], group=view["group"], n=len(view["levels"]))
    fig = layout(fig, title, t("ax_weight"), t("ax_count"), height=400)
    return fig.update_layout(margin={"t": 90, "b": 10})


def _share(part: int, total: int) -> str:
    share = part / total
    return "<1%" if 0 < share < 0.005 else f"{share:.0%}"


def breakdown(rec: dict) -> go.Figure:
    """The file's bytes by part beside the FP16 baseline; a codec gain is a negative segment."""
    b = rec["breakdown"]
    mib = rec["fp16_bytes"] >= 1024**2
    unit, div = ("MiB", 1024**2) if mib else ("KiB", 1024)
    fig = go.Figure()
    rows = [t("fig_fp16_file"), t("fig_quant_file")]
    fig.add_bar(
        y=rows[:1], x=[rec["fp16_bytes"] / div], name=t("fig_fp16_file"), orientation="h", marker_color="#d1d5db",
        text=[fmt_bytes(rec["fp16_bytes"])], hovertext=[fmt_bytes(rec["fp16_bytes"])], hoverinfo="text+name",
    )  # fmt: skip
    parts = [*PARTS, ("codec_gain_bytes", "part_codec_gain", "#7c3aed")]
    for key, label, color in parts:
        value = -b[key] if key == "codec_gain_bytes" else b[key]
        if key == "codec_gain_bytes" and not value:
            continue
        fig.add_bar(
            y=rows[1:], x=[value / div], name=t(label), orientation="h", marker_color=color,
            hovertext=[f"{t(label)}: {fmt_bytes(abs(value))}"], hoverinfo="text",
        )  # fmt: skip
    fig.add_annotation(
        x=b["file_bytes"] / div, y=rows[1], text=f" {fmt_bytes(b['file_bytes'])}", xanchor="left", showarrow=False
    )
    fig.update_layout(barmode="relative")
    return layout(fig, t("fig_breakdown_title", file=fmt_bytes(b["file_bytes"])), t("ax_size", unit=unit), "", 300)


def pareto(records: list[dict], labels: list[str], front: list[bool], y: str) -> go.Figure:
    """bpw against an accuracy axis (a cosine, with the quality bands, or any task metric)."""
    fig = go.Figure()
    values = [metric_value(r, y) for r in records]
    pts = [(r["bpw"], v, label, on) for r, v, label, on in zip(records, values, labels, front, strict=True)]
    off = [p for p in pts if not p[3] and p[1] is not None]
    on = sorted((p for p in pts if p[3]), key=lambda p: p[0])
    fmt = "%{y:.6f}" if not y.startswith("task.") else "%{y:.4g}"
    fig.add_scatter(
        x=[p[0] for p in off], y=[p[1] for p in off], mode="markers", name=t("fig_dominated"),
        marker={"size": 10, "color": "#9ca3af"}, text=[p[2] for p in off],
        hovertemplate="%{text}<br>%{x:.3f} bpw<br>" + fmt + "<extra></extra>",
    )  # fmt: skip
    fig.add_scatter(
        x=[p[0] for p in on], y=[p[1] for p in on], mode="lines+markers+text", name=t("fig_front"),
        marker={"size": 13, "color": "#2563eb"}, line={"color": "#2563eb", "width": 2},
        text=[p[2] for p in on], textfont={"size": 11},
        textposition=["bottom right"] * (len(on) - 1) + ["bottom left"] if on else "bottom right",
        hovertemplate="%{text}<br>%{x:.3f} bpw<br>" + fmt + "<extra></extra>",
    )  # fmt: skip
    if y == "weight_cosine":
        add_limits(fig, [p[0] for p in pts])
    if not y.startswith("task."):
        add_bands(fig, [p[1] for p in pts if p[1] is not None])
    title = t("fig_pareto_title", y=axis_label(y))
    return layout(fig, title, t("ax_bpw"), axis_label(y), height=460)


def add_limits(fig: go.Figure, xs: list[float]) -> go.Figure:
    """The Gaussian limits as weight cosine against bits per weight: the distortion-rate bound (no code beats it)
    and the best scalar quantizer (Lloyd-Max, time-shared between widths)."""
    lo, hi = max(min(xs) * 0.9, 0.5), max(xs) * 1.05
    grid = [lo + (hi - lo) * i / 120 for i in range(121)]
    for name, fn, dash in (("fig_bound", rd_bound, "dot"), ("fig_scalar", lloyd_max, "dash")):
        fig.add_scatter(
            x=grid, y=[math.sqrt(1 - fn(r)) for r in grid], mode="lines", name=t(name),
            line={"color": "#6b7280", "dash": dash, "width": 1.5}, hovertemplate="%{x:.2f} bpw: %{y:.4f}<extra></extra>",
        )  # fmt: skip
    return fig


def column_label(column: str) -> str:
    """'rtn 4' -> '4-bit'; 'e8p' -> the vector column's label."""
    method, _, bits = column.partition(" ")
    return t("fig_bits", b=bits) if bits else t("fig_sens_e8p")


def sensitivity(rows: list[dict], metric: str) -> go.Figure:
    """Per-layer sensitivity: layers down, rtn's widths then e8p across, SQNR (dB) or weight cosine in each cell."""
    columns = list(dict.fromkeys(r["column"] for r in rows))
    names = list(dict.fromkeys(r["name"] for r in rows))
    cell = {(r["name"], r["column"]): r[metric] for r in rows}
    z = [[cell.get((n, c)) for c in columns] for n in names]
    text = [[("n/a" if v is None else f"{v:.2f}" if metric == "sqnr_db" else f"{v:.4f}") for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z, x=[column_label(c) for c in columns], y=names, text=text, texttemplate="%{text}",
            colorscale="RdYlGn", colorbar={"title": {"text": t(f"fig_sens_{metric}")}},
            hovertemplate="%{y} · %{x}: %{text}<extra></extra>", xgap=2, ygap=1,
        )
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed", type="category")
    height = min(160 + 26 * len(names), 2400)
    fig = layout(fig, t("fig_sens_title", metric=t(f"fig_sens_{metric}")), t("ax_bits"), t("ax_layer"), height)
    return fig.update_layout(margin={"b": 20})


def layer_pair(recs: list[dict], labels: list[str], metric: str) -> go.Figure:
    """Per-layer weight cosine or SQNR (dB) of several runs, one trace each, over the layers of all of them in
    order (a gap where a run's model lacks a layer)."""
    names = list(dict.fromkeys(la["name"] for rec in recs for la in rec["layers"]))
    fig = go.Figure()
    ys: list[float] = []
    for i, (rec, label) in enumerate(zip(recs, labels, strict=True)):
        by = {la["name"]: la[metric] for la in rec["layers"]}
        y = [by.get(name) for name in names]
        ys += [v for v in y if v is not None]
        fig.add_scatter(
            x=names, y=y, mode="lines+markers", name=label, line={"color": PALETTE[i % len(PALETTE)], "width": 2},
            marker={"size": 10, "symbol": ("circle", "diamond", "square")[i % 3]},
            hovertemplate="%{x}: %{y:" + (".6f" if metric == "weight_cosine" else ".2f") + "}<extra>" + label + "</extra>",
        )  # fmt: skip
    axis = t("ax_cosine") if metric == "weight_cosine" else t("col_sqnr_db")
    if metric == "weight_cosine":
        add_bands(fig, ys)
    fig.update_xaxes(type="category")
    title = t("fig_pair_title", metric=t("y_weight_cosine") if metric == "weight_cosine" else t("col_sqnr_db"))
    return layout(fig, title, t("ax_layer"), axis, height=380)
