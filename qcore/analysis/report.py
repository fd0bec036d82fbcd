"""The scaling report: measured rows -> Markdown (English or Chinese), CSV and artifacts.

Every sentence is built from the measured rows; the reference report's figures appear only in
columns labelled as the reference.
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from ..errors import QcoreError
from ..format import fmt_bytes, fmt_cos, fmt_db, fmt_metric, fmt_pct, fmt_ratio, fmt_secs
from ..formats.storage import count_bytes
from ..labels import metric_label
from ..measure.metrics import lloyd_max, quality_band, rd_bound
from ..measure.pipeline import run
from ..methods.registry import get_method
from ..models.catalog import load_model
from ..models.presets import PRESETS
from ..progress import Progress
from .reference import REFERENCE_DATE, reference_row

CSV_COLUMNS = [
    "source", "params", "quantized_params", "method", "bits", "group_size", "fp16_bytes", "quantized_bytes",
    "compression_ratio", "theoretical_ratio", "bpw", "weight_cosine", "sqnr_db", "output_cosine", "quality",
    "quant_seconds", "threads", "memory_saving", "metadata_share", "range_std", "zstd_bytes", "zstd_ratio",
]  # fmt: skip


def _label(r: dict) -> str:
    """How a row's method is shown: its spec (e.g. rtn:bits=4:group_size=128) when options were given."""
    return r.get("label") or r["method"]


def parse_spec(spec: str) -> tuple[str, dict]:
    """'rtn:bits=4:group_size=128' -> ('rtn', {'bits': 4, 'group_size': 128}); values are ints, floats or booleans."""
    name, *pairs = spec.split(":")
    opts = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise QcoreError(f"method spec '{spec}': write options as name=value, e.g. rtn:bits=4:group_size=128")
        low = raw.lower()
        if low in ("true", "false"):
            opts[key] = low == "true"
        else:
            try:
                opts[key] = int(raw)
            except ValueError:
                try:
                    opts[key] = float(raw)
                except ValueError:
                    raise QcoreError(f"method spec '{spec}': '{raw}' is not a number or true/false") from None
    return name, opts


def format_spec(method: str, options: dict) -> str:
    """The inverse of parse_spec: ('rtn', {'bits': 4}) -> 'rtn:bits=4'."""
    text = {True: "true", False: "false"}
    return method + "".join(f":{k}={text.get(v, v) if isinstance(v, bool) else v}" for k, v in options.items())


def scaling_rows(
    presets: Sequence[str] = tuple(PRESETS),
    methods: Sequence[str] = ("int8", "int2"),
    options: dict | None = None,
    out_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> list[dict]:
    """Run every preset x method (codec off) and add what zstd would make of the same file."""
    rows = []
    total = len(presets) * len(methods)
    for i, preset in enumerate(presets):
        model = load_model(preset)
        for j, spec in enumerate(methods):
            method, own = parse_spec(spec)
            art = Path(out_dir) / "artifacts" / f"{preset}-{spec.replace(':', '-')}.parquet" if out_dir else None
            opts = {**get_method(method).takes(options or {}), **own} or None
            res = run(model, method, opts, out=art)
            rec = res.record
            rec["zstd_bytes"] = count_bytes(res.quantized, codec="zstd")
            rec["zstd_ratio"] = rec["fp16_bytes"] / rec["zstd_bytes"]
            rec["label"] = spec
            rows.append(rec)
            if progress:
                progress(i * len(methods) + j + 1, total, f"{preset} {spec}")
    return rows


def rows_to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k) for k in CSV_COLUMNS})
    return buf.getvalue()


def write_report(rows: list[dict], out_dir: str | Path, lang: str = "en") -> list[Path]:
    """Write report.md (or report.zh.md) and report.csv into out_dir, atomically each."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / ("report.md" if lang == "en" else f"report.{lang}.md")
    paths = [_write_text(md, render_markdown(rows, lang)), _write_text(out / "report.csv", rows_to_csv(rows))]
    return paths


def _write_text(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


# ---- Markdown ---------------------------------------------------------------------------------

TEXT_DIR = Path(__file__).resolve().parent / "text"


@lru_cache(maxsize=4)
def text(lang: str) -> dict:
    """The report's sentences and column names in `lang` ('en' or 'zh'): qcore/analysis/text/report.LANG.json."""
    name = "zh" if lang == "zh" else "en"
    return json.loads((TEXT_DIR / f"report.{name}.json").read_text(encoding="utf-8"))


def _table(cols: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _by_method(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: r["params"]):
        out.setdefault(_label(r), []).append(r)
    return out


@dataclass(frozen=True)
class _Doc:
    """What every section of one report shares."""

    rows: list[dict]
    t: dict
    groups: dict[str, list[dict]]
    largest: str
    lang: str  # "en" or "zh"

    def band(self, name: str | None) -> str:
        return self.t["bands"].get(name, name)

    def ordered(self) -> list[dict]:
        """Rows by model size, then in the order their methods were given."""
        order = list(self.groups)
        return sorted(self.rows, key=lambda r: (r["params"], order.index(_label(r))))


def render_markdown(rows: list[dict], lang: str = "en") -> str:
    """The report, in the reference report's order, computed from `rows` (records from scaling_rows)."""
    groups = _by_method(rows)
    doc = _Doc(rows, text(lang), groups, max(rows, key=lambda r: r["params"])["source"], lang)
    trends = trend_lines(rows, lang)
    sections = (
        _summary(doc), _results(doc), _reference(doc), _findings(doc, trends), _sizes(doc), _memory(doc),
        _two_bit(doc), _tasks(doc), _conclusions(doc),
    )  # fmt: skip
    return "\n".join(line for section in sections for line in section) + "\n"


def _summary(doc: _Doc) -> list[str]:
    t, rows = doc.t, doc.rows
    sources = list(dict.fromkeys(r["source"] for r in sorted(rows, key=lambda r: r["params"])))
    models = ", ".join(f"{s} ({next(r['params'] for r in rows if r['source'] == s):,})" for s in sources)
    setup = t["setup"].format(
        cpu=platform.machine() or "CPU", torch=torch.__version__, threads=rows[0].get("threads"), models=models,
        methods=", ".join(doc.groups),
    )  # fmt: skip
    return [f"# {t['title']}", "", f"## {t['summary']}", "", setup]


def _results(doc: _Doc) -> list[str]:
    body = [
        [r["source"], f"{r['params']:,}", fmt_bytes(r["fp16_bytes"]), _label(r), fmt_bytes(r["quantized_bytes"]),
         fmt_ratio(r["compression_ratio"]), fmt_ratio(r["theoretical_ratio"]), fmt_cos(r["weight_cosine"]),
         fmt_db(r["sqnr_db"]), fmt_cos(r["output_cosine"]), doc.band(r["quality"]), fmt_secs(r["quant_seconds"])]
        for r in doc.ordered()
    ]  # fmt: skip
    return ["", f"## {doc.t['table']}", "", _table(doc.t["cols"], body)]


def _reference(doc: _Doc) -> list[str]:
    """Our rows beside the reference report's, where it published the same preset and plain method."""
    pairs = [(r, reference_row(r["source"], r["method"])) for r in doc.rows if _label(r) == r["method"]]
    pairs = [(r, ref) for r, ref in pairs if ref]
    if not pairs:
        return []
    body = [
        [r["source"], _label(r), fmt_ratio(r["compression_ratio"]), fmt_ratio(ref["compression_ratio"]),
         fmt_cos(r["weight_cosine"]), f"{ref['weight_cosine']:.4f}", fmt_secs(r["quant_seconds"]),
         f"{ref['quant_seconds']:.2f} s"]
        for r, ref in pairs
    ]  # fmt: skip
    t = doc.t
    return ["", f"### {t['ref_title'].format(date=REFERENCE_DATE)}", "", _table(t["ref_cols"], body), "", t["ref_note"]]


def _findings(doc: _Doc, trends: dict[str, list[str]]) -> list[str]:
    t = doc.t
    out = ["", f"## {t['findings']}", "", f"### {t['f_ratio']}", "", *trends["compression"]]
    out += ["", f"### {t['f_cos']}", "", *trends["accuracy"]]
    why = [r for r in doc.rows if r["layers"] and r["layers"][0].get("predicted_cosine") is not None]
    if why:
        body = []
        for r in sorted(why, key=lambda r: (r["params"], _label(r))):
            row_len = sum(la["params"] for la in r["layers"]) / sum(la["shape"][0] for la in r["layers"])
            pred = _predicted_model_cosine(r)
            body.append([r["source"], f"{row_len:.0f}", f"{r['range_std']:.2f}", _label(r), fmt_cos(pred),
                         fmt_cos(r["weight_cosine"])])  # fmt: skip
        out += ["", t["why_cos"], "", _table(t["why_cols"], body)]
    return out + ["", f"### {t['f_time']}", "", *trends["speed"]]


def _sizes(doc: _Doc) -> list[str]:
    t, rows = doc.t, doc.rows
    body = []
    for r in doc.ordered():
        b, zs = r["breakdown"], r.get("zstd_bytes")
        body.append(
            [r["source"], _label(r), fmt_bytes(b["file_bytes"]), fmt_bytes(b["payload_bytes"]), fmt_bytes(b["metadata_bytes"]),
             fmt_bytes(b["passthrough_bytes"]), fmt_bytes(b["container_bytes"]), fmt_pct(r["metadata_share"]),
             fmt_bytes(zs) if zs else "n/a", fmt_ratio(r["zstd_ratio"]) if zs else "n/a"]
        )  # fmt: skip
    container = sorted(r["breakdown"]["container_bytes"] for r in rows)[len(rows) // 2]
    entropy = ", ".join(
        f"{r['source']} {r['method']} {r['code_entropy']:.2f} of {r['bits']} bits"
        for r in rows
        if r.get("code_entropy")
    )
    note = t["size_note"].format(container=fmt_bytes(container), entropy=entropy or "n/a")
    return ["", f"## {t['size_title']}", "", _table(t["size_cols"], body), "", note]


def _memory(doc: _Doc) -> list[str]:
    t, big = doc.t, [r for r in doc.rows if r["source"] == doc.largest]
    saved = [[_label(r), fmt_bytes(r["fp16_bytes"]), fmt_bytes(r["quantized_bytes"]), fmt_pct(r["memory_saving"]),
              fmt_bytes(r["saved_bytes"])] for r in big]  # fmt: skip
    naive = [[_label(r), f"{r['bpw']:.3f}", fmt_bytes(1e9 * r["bpw"] / 8), fmt_bytes(7e9 * r["bpw"] / 8)] for r in big]
    out = ["", f"## {t['mem_title'].format(model=doc.largest)}", "", _table(t["mem_cols"], saved)]
    out += ["", f"### {t['naive_title']}", "", t["naive_note"].format(model=doc.largest), ""]
    return out + [_table(t["naive_cols"], naive)]


def column_of(r: dict) -> str | None:
    """Where a row sits in the 2-bit comparison: the report's INT8 and INT2, a calibrated 2-bit method (one that
    needs calibration data, at 2 bits), or a vector 2-bit one (lattice or trellis codes); None elsewhere."""
    m = get_method(r["method"])
    if r["method"] in ("int8", "int2"):
        return r["method"]
    if m.needs_calibration and r["bits"] == 2:
        return "calibrated"
    return "vector" if m.kind == "vector" else None


def _two_bit(doc: _Doc) -> list[str]:
    """INT8, INT2, calibrated 2-bit and vector 2-bit side by side per model, with the limits at 2 bits."""
    cells = {(r["source"], column_of(r)): r for r in doc.rows if column_of(r)}
    columns = [c for c in ("int8", "int2", "calibrated", "vector") if any(k[1] == c for k in cells)]
    if not {"int2", "vector"} <= set(columns) and not {"int2", "calibrated"} <= set(columns):
        return []
    t = doc.t
    sources = list(dict.fromkeys(r["source"] for r in sorted(doc.rows, key=lambda r: r["params"])))
    body = []
    for s in sources:
        row = [s]
        for c in columns:
            r = cells.get((s, c))
            row.append(f"{fmt_cos(r['weight_cosine'])} · {r['payload_meta_bpw']:.3f} bpw · {_label(r)}" if r else "n/a")
        body.append(row)
    header = [t["two_cols"][0]] + [
        t["two_cols"][1 + ("int8", "int2", "calibrated", "vector").index(c)] for c in columns
    ]
    note = t["two_note"].format(bound=fmt_cos(math.sqrt(1 - rd_bound(2))), scalar=fmt_cos(math.sqrt(1 - lloyd_max(2))))
    return ["", f"## {t['two_title']}", "", _table(header, body), "", note]


def _tasks(doc: _Doc) -> list[str]:
    tasks = [r for r in doc.rows if r.get("task")]
    if not tasks:
        return []
    t = doc.t
    keys = list(dict.fromkeys(k for r in tasks for k in r["task"]))
    body = [
        [r["source"], _label(r), f"{r['bpw']:.3f}", fmt_cos(r["weight_cosine"]), fmt_cos(r["output_cosine"])]
        + [fmt_metric(r["task"].get(k)) for k in keys]
        for r in sorted(tasks, key=lambda r: (r["params"], r["source"], r["bpw"]))
    ]
    heads = [metric_label(k).heading(doc.lang) for k in keys]
    return ["", f"## {t['task_title']}", "", t["task_note"], "", _table(t["task_cols"] + heads, body)]


def _conclusions(doc: _Doc) -> list[str]:
    big = [r for r in doc.rows if r["source"] == doc.largest]
    return ["", f"## {doc.t['conc']}", "", *_recommendations(big, doc.largest, doc.t, doc.band)]


def trend_lines(rows: list[dict], lang: str = "en") -> dict[str, list[str]]:
    """Trend statements computed from the rows: {"compression": [...], "accuracy": [...], "speed": [...]}."""
    t = text(lang)
    groups = _by_method(rows)
    lines: dict[str, list[str]] = {"compression": [], "accuracy": [], "speed": []}
    for method, rs in groups.items():
        series = " -> ".join(f"{r['source']} {r['compression_ratio']:.2f}x" for r in rs)
        pct = rs[-1]["compression_ratio"] / rs[-1]["theoretical_ratio"]
        theo = f"{rs[-1]['theoretical_ratio']:.2f}x"
        lines["compression"].append(t["ratio_line"].format(method=method, series=series, theo=theo, pct=f"{pct:.1%}"))
        series = " -> ".join(f"{r['source']} {r['weight_cosine']:.6f}" for r in rs)
        d = rs[-1]["weight_cosine"] - rs[0]["weight_cosine"]
        key = "trend_flat" if abs(d) < 1e-4 else ("trend_down" if d < 0 else "trend_up")
        trend = t[key].format(d=f"{abs(d):.6f}")
        lines["accuracy"].append(t["cos_line"].format(method=method, series=series, trend=trend))
        series = " -> ".join(f"{r['source']} {r['quant_seconds']:.4f} s" for r in rs)
        pg = rs[-1]["params"] / rs[0]["params"]
        tg = rs[-1]["quant_seconds"] / max(rs[0]["quant_seconds"], 1e-9)
        tp = rs[-1]["quantized_params"] / max(rs[-1]["quant_seconds"], 1e-9) / 1e6
        fixed = t["fixed_cost"] if tg < pg / 4 else ""
        lines["speed"].append(
            t["time_line"].format(
                method=method, series=series, pg=f"{pg:.0f}", tg=f"{tg:.1f}", tp=f"{tp:.0f}",
                threads=rs[-1]["threads"], fixed=fixed,
            )
        )  # fmt: skip
    return lines


def _predicted_model_cosine(r: dict) -> float:
    """Combine per-layer predictions: noise-to-signal 1/c^2 - 1 per layer, weighted by the layer's energy.

    Preset layers are N(0, 1/fan_in), so a layer's energy is about its row count.
    """
    energy = [la["shape"][0] for la in r["layers"]]
    noise = sum(e * (1 / la["predicted_cosine"] ** 2 - 1) for e, la in zip(energy, r["layers"], strict=True))
    return 1 / math.sqrt(1 + noise / sum(energy))


def _recommendations(big: list[dict], model: str, t: dict, band) -> list[str]:
    lines = []
    best = max(big, key=lambda r: r["weight_cosine"])
    lines.append(t["rec_acc"].format(method=_label(best), cos=fmt_cos(best["weight_cosine"]), band=band(best["quality"]),
                                     model=model, ratio=f"{best['compression_ratio']:.2f}x"))  # fmt: skip
    small = min(big, key=lambda r: r["quantized_bytes"])
    lines.append(t["rec_mem"].format(method=_label(small), ratio=f"{small['compression_ratio']:.2f}x",
                                     saving=f"{small['memory_saving']:.1%}", model=model,
                                     cos=fmt_cos(small["weight_cosine"]), band=band(small["quality"])))  # fmt: skip
    ok = [r for r in big if quality_band(r["weight_cosine"]) in ("excellent", "good", "acceptable")]
    bal = min(ok, key=lambda r: r["quantized_bytes"]) if ok else None
    if bal is not None and bal is not best:
        lines.append(t["rec_bal"].format(method=_label(bal), model=model, cos=fmt_cos(bal["weight_cosine"]),
                                         ratio=f"{bal['compression_ratio']:.2f}x"))  # fmt: skip
    else:
        lines.append(t["rec_none"].format(model=model, method=_label(bal or best)))
    return lines
