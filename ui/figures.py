"""Plotly figure builders. Each takes records (or plain lists) and returns a go.Figure; labels come from ui.i18n."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from qcore import METHODS
from qcore.analysis.reference import reference_row
from qcore.format import fmt_bytes, fmt_cos
from qcore.measure.metrics import lloyd_max, rd_bound
from ui.axes import log_axis, scale_columns, short_names
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
ROW_PX = 22  # pixels per category row (layers down an axis): room for one line of tick text
MAX_HEIGHT = 2400
FRONT_COLORS = ("#e6194b", "#f58231", "#3cb44b", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#000075")
MAX_NAMED = len(FRONT_COLORS)  # Pareto front points named in the legend (told apart by colour); more: on hover
SLIVER = 0.02  # a breakdown part under this share of the longest bar gets its own zoomed view


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
    bands = (fig.layout.meta or {}).get("bands")
    if bands == "x":  # the band names sit above the plot: the title moves left, out of their way
        fig.update_layout(margin={"t": 70}, title={"x": 0, "xanchor": "left"})
    elif bands:  # room for the band names right of the plot
        fig.update_layout(margin={"r": 80})
    return fig


def add_bands(fig: go.Figure, ys: list[float], axis: str = "y") -> go.Figure:
    """Shade the quality bands behind a cosine axis (`axis` "y", or "x" for a horizontal chart) and fit the axis
    to the data (and the band edges)."""
    lo = min([y for y in ys if y is not None] + [0.84]) - 0.01
    for name, low, high, fill in BANDS:
        y0, y1 = max(low, lo), min(high, 1.0)
        if axis == "x":
            fig.add_vrect(x0=y0, x1=y1, fillcolor=fill, line_width=0, layer="below")
            where = {"x": (y0 + y1) / 2, "xref": "x", "y": 1.0, "yref": "paper", "yanchor": "bottom"}
        else:
            fig.add_hrect(y0=y0, y1=y1, fillcolor=fill, line_width=0, layer="below")
            where = {"x": 1.005, "xref": "paper", "xanchor": "left", "y": (y0 + y1) / 2, "yref": "y"}
        fig.add_annotation(**where, text=band(name), showarrow=False, font={"size": 10, "color": "#6b7280"})
    (fig.update_xaxes if axis == "x" else fig.update_yaxes)(range=[lo, 1.003])
    fig.update_layout(meta={"bands": axis})
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
    fig.update_xaxes(**log_axis([r["params"] for r in rows]))  # labelled ticks however few presets there are


def scaling_ratio(rows: list[dict]) -> go.Figure:
    fig = go.Figure()
    _series(fig, rows, "compression_ratio", lambda v: f"{v:.2f}x", show_ref=True)
    lines: dict[float, list[str]] = {}  # one line per theoretical ratio, naming every method that has it
    for method, rs in _by_method(rows).items():
        lines.setdefault(round(rs[-1]["theoretical_ratio"], 2), []).append(method)
    top, prev, side = max([*lines, *(r["compression_ratio"] for r in rows)], default=1.0), None, "top right"
    for theo, methods in sorted(lines.items()):
        near = prev is not None and theo - prev < 0.08 * top  # close lines: their names alternate sides
        side = ("top right" if side == "top left" else "top left") if near else "top left"
        fig.add_hline(
            y=theo, line={"dash": "dot", "color": method_color(methods[0]) if len(methods) == 1 else "#6b7280"},
            annotation_text=t("fig_theoretical", method=", ".join(methods), value=f"{theo:.2f}x"),
            annotation_position=side,
        )  # fmt: skip
        prev = theo
    return layout(fig, t("fig_ratio_title"), t("ax_params"), t("ax_ratio"))


def scaling_cosine(rows: list[dict]) -> go.Figure:
    fig = go.Figure()
    _series(fig, rows, "weight_cosine", fmt_cos, show_ref=True)
    add_bands(fig, [r["weight_cosine"] for r in rows])
    return layout(fig, t("fig_cosine_title"), t("ax_params"), t("ax_cosine"))


def scaling_time(rows: list[dict]) -> go.Figure:
    fig = go.Figure()
    _series(fig, rows, "quant_seconds", lambda v: f"{v:.4f} s")
    fig.update_yaxes(**log_axis([r["quant_seconds"] for r in rows]))  # >= 3 labelled ticks, even within a decade
    threads = rows[0].get("threads") if rows else "?"
    return layout(fig, t("fig_time_title", threads=threads), t("ax_params"), t("ax_seconds"))


def scaling_metadata(rows: list[dict]) -> go.Figure:
    fig = go.Figure()
    _series(fig, rows, "metadata_share", lambda v: f"{v:.1%}", scale=100.0)
    return layout(fig, t("fig_meta_title"), t("ax_params"), t("ax_meta_pct"))


def layer_cosines(rec: dict) -> go.Figure:
    """Weight cosine per layer as a dot chart with the layers down the y axis, so that any number of long layer
    names stays readable: a short name and the measured value on the axis (ui.axes.short_names), the full name on
    hover."""
    layers = rec["layers"]
    names = [la["name"] for la in layers]
    cos = [la["weight_cosine"] for la in layers]
    pred = [la["predicted_cosine"] for la in layers]
    size = 12 if len(names) <= 40 else 8
    fig = go.Figure()
    fig.add_scatter(
        x=cos, y=names, mode="markers", name=t("fig_measured"), marker={"size": size, "color": "#2563eb"},
        hovertemplate="%{y}: %{x:.6f}<extra></extra>",
    )  # fmt: skip
    if any(p is not None for p in pred):
        fig.add_scatter(
            x=pred, y=names, mode="markers", name=t("fig_predicted"),
            marker={"symbol": "diamond-open", "size": size, "color": "#111827", "line": {"width": 2}},
            hovertemplate="%{y}: %{x:.6f}<extra>" + t("fig_predicted") + "</extra>",
        )  # fmt: skip
    add_bands(fig, cos + [p for p in pred if p is not None], axis="x")
    height = min(150 + max(ROW_PX * len(names), 110), MAX_HEIGHT)
    texts = [f"{short} · {fmt_cos(c)}" for short, c in zip(short_names(names), cos, strict=True)]
    fig.update_yaxes(type="category", autorange="reversed", **category_ticks(names, texts, height - 150))
    return layout(fig, t("fig_layers_title"), t("ax_cosine"), t("ax_layer"), height=height)


def category_ticks(values: list[str], texts: list[str], plot_px: int) -> dict:
    """Ticks for a category axis of `values` shown as `texts` over `plot_px` pixels: every one while each gets
    ROW_PX, else every k-th one (the rest on hover), so tick labels never overlap."""
    step = max(1, math.ceil(ROW_PX * len(values) / max(plot_px, 1)))
    return {"tickmode": "array", "tickvals": values[::step], "ticktext": texts[::step]}


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
    ] if view["bits"] <= 3 and _apart(view["levels"], view["weights"]) else []  # fmt: skip
    fig.update_layout(bargap=0.02, showlegend=False, shapes=shapes, annotations=notes)
    title = t("fig_hist_title", name=view["name"], row=view["row"], group=view["group"], n=len(view["levels"]))
    fig = layout(fig, title, t("ax_weight"), t("ax_count"), height=400)
    return fig.update_layout(margin={"t": 90, "b": 10})


def _apart(levels: list[float], weights: list[float]) -> bool:
    """Whether neighbouring levels are far enough apart (1/14 of the axis) for a two-line note above each."""
    xs = sorted(levels)
    span = max([*xs, *weights]) - min([*xs, *weights])
    return span > 0 and all(b - a >= span / 14 for a, b in zip(xs, xs[1:], strict=False))


def _share(part: int, total: int) -> str:
    share = part / total
    return "<1%" if 0 < share < 0.005 else f"{share:.0%}"


def breakdown(rec: dict) -> go.Figure:
    """The file's bytes by part beside the FP16 baseline; a codec gain is a negative segment. The parts too thin
    to see there (under SLIVER of the longest bar) get a second view below: a bar each on their own scale,
    labelled with size and share of the file."""
    b = rec["breakdown"]
    parts = [(t(label), b[key], color) for key, label, color in PARTS]
    if b["codec_gain_bytes"]:
        parts.append((t("part_codec_gain"), -b["codec_gain_bytes"], "#7c3aed"))
    longest = max(rec["fp16_bytes"], sum(v for _, v, _ in parts if v > 0))
    zoom = [p for p in parts if 0 < abs(p[1]) < SLIVER * longest]  # in legend order, top down
    px_zoom = 30 * len(zoom) + 20  # pixels: the whole bars get 170, the zoom 30 a bar, 110 between them
    fig = (
        make_subplots(rows=2, cols=1, row_heights=[170, px_zoom], vertical_spacing=110 / (280 + px_zoom),
                      subplot_titles=("", t("fig_zoom_title", pct=f"{SLIVER:.0%}")))
        if zoom else go.Figure()
    )  # fmt: skip
    unit = _whole_bars(fig, rec, parts)
    fig.update_annotations(font_size=13)  # the zoom's title, a step below the figure's
    if zoom:
        _zoom_bars(fig, zoom, b["file_bytes"])
    height = 300 + (px_zoom + 110 if zoom else 0)
    title = t("fig_breakdown_title", file=fmt_bytes(b["file_bytes"]))
    return layout(fig, title, t("ax_size", unit=unit), "", height).update_layout(barmode="relative")


def _size_unit(n: float) -> tuple[str, int]:
    return ("MiB", 1024**2) if n >= 1024**2 else ("KiB", 1024)


def _whole_bars(fig: go.Figure, rec: dict, parts: list[tuple[str, int, str]]) -> str:
    """The FP16 file and the quantized file split by part, on one axis; returns the axis unit."""
    unit, div = _size_unit(rec["fp16_bytes"])
    file_bytes = rec["breakdown"]["file_bytes"]
    rows = [t("fig_fp16_file"), t("fig_quant_file")]
    fig.add_bar(
        y=rows[:1], x=[rec["fp16_bytes"] / div], name=t("fig_fp16_file"), orientation="h", marker_color="#d1d5db",
        text=[fmt_bytes(rec["fp16_bytes"])], hovertext=[fmt_bytes(rec["fp16_bytes"])], hoverinfo="text+name",
    )  # fmt: skip
    for label, value, color in parts:
        fig.add_bar(
            y=rows[1:], x=[value / div], name=label, orientation="h", marker_color=color, legendgroup=label,
            hovertext=[f"{label}: {_part_text(value, file_bytes)}"], hoverinfo="text",
        )  # fmt: skip
    fig.add_annotation(x=file_bytes / div, y=rows[1], text=f" {fmt_bytes(file_bytes)}", xanchor="left", showarrow=False)
    return unit


def _zoom_bars(fig: go.Figure, zoom: list[tuple[str, int, str]], file_bytes: int) -> None:
    """The small parts, one bar each on the second row's own axis, each labelled (no legend entry: same colours)."""
    unit, div = _size_unit(max(abs(v) for _, v, _ in zoom))
    sizes = [abs(v) / div for _, v, _ in zoom]
    axis = {"range": [0, max(sizes) * 1.6]}
    if max(sizes) > 10 * min(sizes):  # an order of magnitude apart: a log axis keeps the smallest visible
        lo, hi = math.log10(min(sizes)), math.log10(max(sizes))
        axis = {"type": "log", "range": [lo - max(0.5, 0.15 * (hi - lo)), hi + 0.6]}
    for (label, value, color), size in zip(zoom, sizes, strict=True):
        fig.add_bar(
            y=[label], x=[size], orientation="h", marker_color=color, name=label, legendgroup=label,
            showlegend=False, text=[_part_text(value, file_bytes)], textposition="outside", cliponaxis=False,
            hovertext=[f"{label}: {_part_text(value, file_bytes)}"], hoverinfo="text", row=2, col=1,
        )  # fmt: skip
    fig.update_xaxes(title_text=t("ax_size", unit=unit), **axis, row=2, col=1)
    fig.update_yaxes(autorange="reversed", row=2, col=1)


def _part_text(value: int, file_bytes: int) -> str:
    """'7.0 KiB · 0.26% of the file' (a codec gain with a minus sign)."""
    share = abs(value) / max(file_bytes, 1)
    size = ("−" if value < 0 else "") + fmt_bytes(abs(value))
    text = "<0.01%" if 0 < share < 0.0001 else f"{share:.2%}" if share < 0.01 else f"{share:.1%}"
    return t("fig_part_share", size=size, share=text)


def pareto(records: list[dict], labels: list[str], front: list[bool], y: str) -> go.Figure:
    """bpw against an accuracy axis (a cosine, with the quality bands, or any task metric)."""
    fig = go.Figure()
    values = [metric_value(r, y) for r in records]
    pts = [(r["bpw"], v, label, on) for r, v, label, on in zip(records, values, labels, front, strict=True)]
    off = [p for p in pts if not p[3] and p[1] is not None]
    on = sorted((p for p in pts if p[3]), key=lambda p: p[0])
    hover = "%{customdata}<br>%{x:.3f} bpw<br>" + ("%{y:.6f}" if not y.startswith("task.") else "%{y:.4g}")
    hover += "<extra></extra>"
    fig.add_scatter(
        x=[p[0] for p in off], y=[p[1] for p in off], mode="markers", name=t("fig_dominated"),
        marker={"size": 10, "color": "#9ca3af"}, customdata=[p[2] for p in off], hovertemplate=hover,
    )  # fmt: skip
    named = len(on) <= MAX_NAMED  # a few front points: each its own legend entry; more: one trace, names on hover
    fig.add_scatter(
        x=[p[0] for p in on], y=[p[1] for p in on], mode="lines" if named else "lines+markers",
        name=t("fig_front") if named else t("fig_front_many", n=len(on)), customdata=[p[2] for p in on],
        line={"color": "#2563eb", "width": 2}, marker={"size": 11, "color": "#2563eb"},
        hoverinfo="skip" if named else None, hovertemplate=None if named else hover,
    )  # fmt: skip
    for i, (bpw, v, label, _) in enumerate(on if named else []):  # colours tell the legend's names apart
        fig.add_scatter(
            x=[bpw], y=[v], mode="markers", name=label, customdata=[label], hovertemplate=hover,
            marker={"size": 13, "color": FRONT_COLORS[i], "line": {"width": 1, "color": "white"}},
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


def sensitivity(rows: list[dict], metric: str, per_width: bool = False) -> go.Figure:
    """Per-layer sensitivity: layers down, rtn's widths then e8p across, SQNR (dB) or weight cosine in each cell.

    One colour scale spans all widths, so 2-bit cells are all red and 8-bit all green; with `per_width` each column
    is coloured on its own scale (lowest to highest within that width: which layers suffer most at each width),
    while the cells and the hover keep the measured values."""
    columns = list(dict.fromkeys(r["column"] for r in rows))
    names = list(dict.fromkeys(r["name"] for r in rows))
    cell = {(r["name"], r["column"]): r[metric] for r in rows}
    z = [[cell.get((n, c)) for c in columns] for n in names]
    text = [[("n/a" if v is None else f"{v:.2f}" if metric == "sqnr_db" else f"{v:.4f}") for v in row] for row in z]
    label = t(f"fig_sens_{metric}")
    bar = {"title": {"text": label}}
    if per_width:
        bar = {"title": {"text": t("fig_sens_per_width"), "side": "right"}, "tickvals": [0, 1],
               "ticktext": [t("fig_sens_lowest"), t("fig_sens_highest")]}  # fmt: skip
    height = min(230 + 26 * len(names), MAX_HEIGHT)  # 110 px above the grid (title, widths), 20 below
    fig = go.Figure(
        go.Heatmap(
            z=scale_columns(z) if per_width else z, x=[column_label(c) for c in columns], y=names, text=text,
            texttemplate="%{text}" if ROW_PX * len(names) <= height - 130 else "", colorscale="RdYlGn", colorbar=bar,
            zmin=0 if per_width else None, zmax=1 if per_width else None,
            hovertemplate="%{y} · %{x}: %{text}<extra></extra>", xgap=2, ygap=1,
        )
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed", type="category", **category_ticks(names, short_names(names), height - 130))
    fig.update_xaxes(side="top")  # the widths' names above a tall grid, next to its first rows
    title = t("fig_sens_title_per_width" if per_width else "fig_sens_title", metric=label)
    fig = layout(fig, title, t("ax_bits"), t("ax_layer"), height)
    title_top = {"yref": "container", "y": 1, "yanchor": "top", "pad": {"t": 12}}  # above the widths' axis title
    return fig.update_layout(margin={"t": 110, "b": 20}, title=title_top)


def layer_pair(recs: list[dict], labels: list[str], metric: str) -> go.Figure:
    """Per-layer weight cosine or SQNR (dB) of several runs, one trace each, with the layers of all of them down the
    y axis in order (short names on the axis, the full name on hover; a gap where a run's model lacks a layer)."""
    names = list(dict.fromkeys(la["name"] for rec in recs for la in rec["layers"]))
    fig = go.Figure()
    xs: list[float] = []
    fmt = ".6f" if metric == "weight_cosine" else ".2f"
    for i, (rec, label) in enumerate(zip(recs, labels, strict=True)):
        by = {la["name"]: la[metric] for la in rec["layers"]}
        x = [by.get(name) for name in names]
        xs += [v for v in x if v is not None]
        fig.add_scatter(
            x=x, y=names, mode="markers", name=label,
            marker={"size": 10, "color": PALETTE[i % len(PALETTE)], "symbol": ("circle", "diamond", "square")[i % 3]},
            hovertemplate="%{y}: %{x:" + fmt + "}<extra>" + label + "</extra>",
        )  # fmt: skip
    axis = t("ax_cosine") if metric == "weight_cosine" else t("col_sqnr_db")
    if metric == "weight_cosine":
        add_bands(fig, xs, axis="x")
    height = min(150 + max(ROW_PX * len(names), 110), MAX_HEIGHT)
    fig.update_yaxes(type="category", autorange="reversed", **category_ticks(names, short_names(names), height - 150))
    title = t("fig_pair_title", metric=t("y_weight_cosine") if metric == "weight_cosine" else t("col_sqnr_db"))
    return layout(fig, title, axis, t("ax_layer"), height=height)
