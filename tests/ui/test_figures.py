"""Charts that make their point: no labels that can overlap (names go to a legend, an axis or the hover), the size
breakdown zooms on parts too thin to see, log axes label at least three values, the sensitivity heatmap can colour
each bit width on its own scale, and the per-layer chart stays readable for dozens of long layer names."""

from __future__ import annotations

import json
import math
import random

import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

import qcore
from tests.conftest import ROOT
from ui import extrap_figures as xfig
from ui import figures
from ui.axes import log_axis, scale_columns, short_names

BERT = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
        "intermediate.dense", "output.dense"]  # fmt: skip
MAX_TEXT_POINTS = 5  # a trace may write text beside at most this many points, each at its own category
TIMEOUT = 300


def bert_names(n: int) -> list[str]:
    """`n` layer names as a BERT checkpoint spells them (37 for a 6-layer model with its pooler)."""
    names = [f"bert.encoder.layer.{i // 6}.{BERT[i % 6]}.weight" for i in range(n - 1)]
    return [*names, "bert.pooler.dense.weight"]


def layer_record(names: list[str], seed: int = 0) -> dict:
    rng = random.Random(seed)
    return {"layers": [{"name": n, "weight_cosine": 0.99 - 0.05 * rng.random(),
                        "predicted_cosine": 0.99 - 0.05 * rng.random()} for n in names]}  # fmt: skip


def sweep_records(n: int, seed: int = 0) -> tuple[list[dict], list[str], list[bool]]:
    """`n` configurations crowded near cosine 1 (as rtn at 4 and 8 bits are), all on the front."""
    rng = random.Random(seed)
    bpw = sorted(2 + 7 * rng.random() for _ in range(n))
    recs = [{"bpw": b, "weight_cosine": 1 - 0.08 * 2 ** (-b) - 1e-4 * rng.random()} for b in bpw]
    return recs, [f"rtn {i}b g{32 * (i + 1)} clip" for i in range(n)], [True] * n


def kind_rows(archs: int, methods: int) -> list[dict]:
    kinds = {"embedding": 300, "attention": 400, "mlp": 900, "norm": 1, "head": 300}
    rows = []
    for a in range(archs):
        for m in range(methods):
            by_kind = {k: v * 2**20 // (m + 2) for k, v in kinds.items()}
            rows.append({"arch": f"arch-{a}", "label": f"rtn {m + 2}b g128", "fp16_bytes_by_kind": {
                k: v * 2**20 for k, v in kinds.items()}, "fp16_bytes": sum(kinds.values()) * 2**20 + 4096,
                "bytes_by_kind": by_kind, "quantized_bytes": sum(by_kind.values()) + 4096,
                "compression_ratio": (m + 2) * 0.9})  # fmt: skip
    return rows


def scaling_rows(seconds: list[float], params: list[int] | None = None, method: str = "int8") -> list[dict]:
    params = params or [10_000 * 17**i for i in range(len(seconds))]
    return [{"source": f"model-{i}", "method": method, "params": p, "quant_seconds": s, "threads": 2,
             "compression_ratio": 1.9, "theoretical_ratio": 2.0, "weight_cosine": 0.9999, "metadata_share": 0.01}
            for i, (p, s) in enumerate(zip(params, seconds, strict=True))]  # fmt: skip


def written(trace) -> bool:
    """Whether a trace writes text on the plot (not only on hover)."""
    return trace.type == "scatter" and "text" in (trace.mode or "")


def every_figure() -> dict[str, go.Figure]:
    recs, labels, front = sweep_records(12)
    few = sweep_records(4, seed=1)
    return {
        "layers 3": figures.layer_cosines(layer_record(["fc1.weight", "fc2.weight", "fc3.weight"])),
        "layers 40": figures.layer_cosines(layer_record(bert_names(40))),
        "pareto 12 on the front": figures.pareto(recs, labels, front, "weight_cosine"),
        "pareto 4 on the front": figures.pareto(*few, "weight_cosine"),
        "sizes 3 archs x 7": xfig.sizes_by_kind(kind_rows(3, 6)),
        "sizes 2 archs x 3": xfig.sizes_by_kind(kind_rows(2, 2)),
        "time": figures.scaling_time(scaling_rows([0.002, 0.003, 0.006])),
    }


@pytest.mark.parametrize("name", list(every_figure()))
def test_no_chart_writes_labels_that_can_overlap(name):
    """Text on the plot only for a few points, each at a category of its own (a bar's total); anything more
    goes to the legend or the hover."""
    fig = every_figure()[name]
    for trace in fig.data:
        if written(trace):
            assert len(trace.x) <= MAX_TEXT_POINTS, (name, trace.name, len(trace.x))
            assert len(set(trace.x)) == len(trace.x), (name, trace.name)


@pytest.mark.parametrize("n", [4, 12])
def test_every_pareto_configuration_is_named_in_the_legend_or_on_hover(n):
    recs, labels, front = sweep_records(n)
    front[0] = False  # one dominated configuration too
    fig = figures.pareto(recs, labels, front, "weight_cosine")
    legend = {tr.name for tr in fig.data if tr.showlegend is not False}
    hover = {
        c
        for tr in fig.data
        if tr.customdata is not None
        for c in tr.customdata
        if "customdata" in (tr.hovertemplate or "")
    }
    assert set(labels) <= legend | hover
    named = set(labels[1:]) <= legend
    assert named == (n - 1 <= figures.MAX_NAMED)  # a short front in the legend, a long one on hover
    assert not any(written(tr) for tr in fig.data)


def test_breakdown_zooms_on_parts_too_thin_to_see():
    """large at int8: metadata, FP16 tensors and the container are each under 0.3% of the file, invisible on the
    whole bar; the second view gives each a bar of its own, at least a tenth of its axis, labelled with its share."""
    rec = qcore.run(qcore.load_model("large"), "int8").record
    b = rec["breakdown"]
    longest = rec["fp16_bytes"]
    small = {k: v for k, v in b.items() if k.endswith("_bytes") and k != "file_bytes" and 0 < v < 0.02 * longest}
    assert {"metadata_bytes", "passthrough_bytes", "container_bytes"} <= set(small)
    fig = figures.breakdown(rec)
    zoom = [tr for tr in fig.data if tr.xaxis == "x2"]
    assert len(zoom) == 3  # every part but the payload, each under 2% of the FP16 bar
    top = fig.layout.xaxis2.range[1]
    for tr in zoom:
        assert tr.x[0] >= 0.1 * top, tr.name
        assert "of the file" in tr.text[0]
    div = 1024  # the zoom's unit: KiB for parts this size
    assert sorted(round(tr.x[0] * div) for tr in zoom) == sorted(small.values())
    assert "0.26% of the file" in {tr.text[0].split(" · ")[1] for tr in zoom}  # 7171 of 2769423 bytes


def test_breakdown_without_slivers_keeps_one_view_and_shows_a_codec_gain_in_the_zoom():
    parts = {"payload_bytes": 400, "metadata_bytes": 100, "passthrough_bytes": 60, "container_bytes": 40}
    rec = {"fp16_bytes": 1000, "breakdown": {**parts, "codec_gain_bytes": 0, "file_bytes": 600}}
    assert "xaxis2" not in figures.breakdown(rec).to_dict()["layout"]
    rec["breakdown"].update(codec_gain_bytes=5, file_bytes=595)  # 0.5% of the axis: a sliver
    zoom = [tr for tr in figures.breakdown(rec).data if tr.xaxis == "x2"]
    gain = next(tr for tr in zoom if tr.name == "codec gain")
    assert gain.x[0] > 0 and gain.text[0].startswith("−5 B")


def test_breakdown_zoom_takes_a_log_axis_when_its_parts_are_orders_of_magnitude_apart():
    parts = {"payload_bytes": 10_000_000, "metadata_bytes": 40_000, "passthrough_bytes": 20_000_000,
             "container_bytes": 500, "codec_gain_bytes": 0}  # fmt: skip
    rec = {"fp16_bytes": 40_000_000, "breakdown": {**parts, "file_bytes": 30_040_500}}
    fig = figures.breakdown(rec)
    zoom = [tr for tr in fig.data if tr.xaxis == "x2"]
    assert [tr.name for tr in zoom] == ["metadata (scales, zeros)", "container"]  # only the slivers
    axis = fig.layout.xaxis2
    assert axis.type == "log"
    lo, hi = axis.range
    assert all(math.log10(tr.x[0]) - lo >= 0.1 * (hi - lo) for tr in zoom)
    assert zoom[1].text[0] == "500 B · <0.01% of the file"


def ticks_inside(axis) -> list[float]:
    lo, hi = axis.range
    return [v for v in axis.tickvals if lo <= math.log10(v) <= hi]


@pytest.mark.parametrize("seconds", [[0.0021, 0.0035, 0.0062], [0.004], [0.0025, 0.0034, 0.0157], [1e-4, 30.0]])
def test_time_axis_labels_at_least_three_values(seconds):
    """Times within one decade used to get a log axis with one tick (dtick 1): now three or more, spread evenly."""
    fig = figures.scaling_time(scaling_rows(seconds))
    for axis, values in ((fig.layout.yaxis, seconds), (fig.layout.xaxis, [r["params"] for r in scaling_rows(seconds)])):
        assert axis.type == "log"
        ticks = ticks_inside(axis)
        assert 3 <= len(ticks) <= 10, ticks
        assert all(axis.range[0] <= math.log10(v) <= axis.range[1] for v in values)
        assert len(set(axis.ticktext)) == len(axis.ticktext)
        steps = [math.log10(b / a) for a, b in zip(ticks, ticks[1:], strict=False)]
        assert max(steps) <= 2.5 * min(steps)  # no bunched-up ticks (1..9 would crowd the top of a decade)


def test_log_axis_always_labels_three_values_around_the_data():
    rng = random.Random(7)
    for _ in range(500):
        lo = rng.uniform(-9, 9)
        values = [10 ** (lo + rng.uniform(0, rng.choice([0, 0.2, 1, 4]))) for _ in range(rng.randint(1, 5))]
        axis = go.Figure().update_xaxes(**log_axis(values)).layout.xaxis
        assert 3 <= len(ticks_inside(axis)) <= 10, values
        assert all(axis.range[0] <= math.log10(v) <= axis.range[1] for v in values)


def test_theoretical_ratios_shared_by_methods_are_one_line():
    rows = scaling_rows([0.01, 0.02], method="int2") + scaling_rows([0.01, 0.02], method="seq")
    for r in rows:
        r["theoretical_ratio"] = 8.0
    fig = figures.scaling_ratio(rows + scaling_rows([0.01, 0.02]))
    notes = sorted(a.text for a in fig.layout.annotations)
    assert notes == ["int2, seq theoretical 8.00x", "int8 theoretical 2.00x"]


def sensitivity_rows() -> list[dict]:
    """Three layers: at 2 bits all near 6 dB, at 8 bits all near 45 dB; fc2 the worst at 2 bits, fc3 at 8."""
    db = {"rtn 2": (6.2, 5.1, 6.0), "rtn 8": (45.0, 45.3, 44.1), "e8p": (10.4, 10.4, 10.4)}
    return [{"name": f"fc{i + 1}.weight", "column": col, "sqnr_db": v, "weight_cosine": 1 - 10 ** (-v / 10)}
            for col, vs in db.items() for i, v in enumerate(vs)]  # fmt: skip


def test_sensitivity_per_width_colours_each_column_on_its_own_scale():
    rows = sensitivity_rows()
    one = figures.sensitivity(rows, "sqnr_db").data[0]
    assert [r[0] for r in one.z] == [6.2, 5.1, 6.0]  # the raw values on one scale (the default)
    heat = figures.sensitivity(rows, "sqnr_db", per_width=True).data[0]
    cols = list(zip(*heat.z, strict=True))
    assert cols[0] == (1.0, 0.0, pytest.approx(0.9 / 1.1)) and cols[1] == (pytest.approx(0.9 / 1.2), 1.0, 0.0)
    assert cols[2] == (0.5, 0.5, 0.5)  # a column with one value throughout: the middle colour
    assert (heat.zmin, heat.zmax) == (0, 1)
    assert [row[0] for row in heat.text] == ["6.20", "5.10", "6.00"]  # cells and hover keep the measured values
    assert "%{text}" in heat.hovertemplate
    assert list(heat.colorbar.ticktext) == ["lowest", "highest"]


def test_scale_columns_maps_each_column_to_its_own_range():
    assert scale_columns([[1, 10, None], [3, 10, 4], [2, 20, None]]) == [[0, 0, None], [1, 0, 0.5], [0.5, 1, None]]


def test_per_layer_chart_stays_readable_for_forty_long_layer_names():
    names = bert_names(40)
    fig = figures.layer_cosines(layer_record(names))
    assert not any(written(tr) for tr in fig.data)
    measured = fig.data[0]
    assert list(measured.y) == names and all(isinstance(x, float) for x in measured.x)  # layers down the y axis
    assert "%{y}" in measured.hovertemplate  # the full name on hover
    axis = fig.layout.yaxis
    assert list(axis.tickvals) == names  # every layer labelled ...
    assert all(len(text) <= 40 + len(" · 0.999999") for text in axis.ticktext)
    plot_px = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    assert plot_px / len(axis.tickvals) >= 18  # ... a line of text apart, never rotated over each other
    assert axis.ticktext[0].startswith("…encoder.layer.0.attention.self.query · ")


def test_per_layer_chart_thins_its_labels_past_what_fits():
    names = [f"model.layers.{i // 7}.proj{i % 7}.weight" for i in range(300)]
    fig = figures.layer_cosines(layer_record(names))
    axis = fig.layout.yaxis
    plot_px = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    assert len(axis.tickvals) < 300 and plot_px / len(axis.tickvals) >= figures.ROW_PX
    assert list(fig.data[0].y) == names  # every layer still drawn, the unlabelled ones named on hover


def test_short_names_drop_the_shared_suffix_cut_at_dots_and_stay_unique():
    assert short_names(["fc1.weight", "fc2.weight"]) == ["fc1", "fc2"]
    assert short_names(["a.weight", "b.bias"]) == ["a.weight", "b.bias"]
    long = [
        "bert.encoder.layer.10.attention.output.dense.weight",
        "bert.encoder.layer.11.attention.output.dense.weight",
    ]
    assert short_names(long) == ["…encoder.layer.10.attention.output.dense", "…encoder.layer.11.attention.output.dense"]
    same_tail = ["a" * 30 + ".x.attention.output.dense", "b" * 30 + ".x.attention.output.dense"]
    assert short_names(same_tail) == same_tail  # cutting would merge them: kept whole


def test_the_quantize_page_offers_a_colour_scale_per_bit_width():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.selectbox(key="preset").set_value("small").run()
    at.button(key="q_sens_run").click().run()
    assert not at.exception and not at.error
    toggle = at.toggle(key="q_sens_per_width")
    assert toggle.value is False and toggle.label == "Colour scale per bit width"
    toggle.set_value(True).run()
    assert not at.exception
    heat = at.get("plotly_chart")[-1]
    z = json.loads(heat.proto.spec)["data"][0]["z"]
    for col in zip(*z, strict=True):
        assert min(col) == 0 and max(col) == 1
