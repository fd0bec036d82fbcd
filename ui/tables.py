"""Records -> display strings, DataFrames and small derived views. No Streamlit widgets, no tensor math.

Figures use the CLI's formats (qcore.format), so the dashboard prints what the CLI prints.
"""

from __future__ import annotations

import pandas as pd

from qcore import METHODS, Model, RunResult
from qcore.analysis.levels import group_levels, group_weights, level_usage
from qcore.analysis.reference import reference_row
from qcore.analysis.sweep import pareto_front
from qcore.api.specs import MethodSpec, Options, as_options
from qcore.format import fmt_bytes, fmt_cos, fmt_db, fmt_ratio, fmt_secs
from qcore.labels import Label, metric_label, option_label, option_names
from qcore.methods.quant import QuantizedTensor
from ui.i18n import band, lang, t


def options_text(options: Options) -> str:
    """'Code width 4 bits, Group size 128 weights, Symmetric off': each option's label in the chosen language, in
    the order qcore/labels.json lists them (the width and the grouping first)."""
    order = {name: i for i, name in enumerate(option_names())}
    ordered = sorted(options, key=lambda kv: order.get(kv[0], len(order)))
    return t("opt_sep").join(option_text(k, v) for k, v in ordered) or t("no_options")


def option_text(name: str, value) -> str:
    """One option as a person reads it: its label, then the value with its unit (a switch reads on or off)."""
    label = option_label(name)
    if isinstance(value, bool):
        return t("opt_value", label=label.title(lang()), value=t("opt_on") if value else t("opt_off"))
    if name == "group_size" and value == 0:
        return t("opt_value", label=label.title(lang()), value=t("per_channel"))
    unit = label.unit_of(lang())
    return t("opt_value", label=label.title(lang()), value=f"{value} {unit}" if unit else value)


def spec_label(spec: MethodSpec) -> str:
    """A short name for a configuration: 'int8', 'rtn 4b g64 clip', 'rtn 2b per-ch', or a method with the options
    that differ from its defaults ('hqq iters=5')."""
    method, options = spec.method, spec.options if spec.method == "rtn" else spec.changed()
    o = dict(options)
    if method != "rtn" or not o:
        extra = [f"{k}={v}" for k, v in options]
        return " ".join([method, *extra])
    parts = [f"rtn {o.get('bits', 4)}b", f"g{o['group_size']}" if o.get("group_size") else "per-ch"]
    parts += [name for name in ("sym", "clip") if o.get(name)]
    return " ".join(parts)


def compare_specs(
    bits: list[int], groups: list[int], clips: list[bool], baselines: list[str]
) -> tuple[MethodSpec, ...]:
    """The Compare sweep: each baseline method with its defaults, then rtn over bits x group size x clip."""
    specs = [MethodSpec(m) for m in baselines if m in METHODS]
    for b in sorted(bits):
        for g in sorted(groups):
            for c in sorted(clips):
                specs.append(MethodSpec("rtn", as_options({"bits": b, "group_size": g, "sym": False, "clip": c})))
    return tuple(specs)


def method_order(rows: list[dict]) -> list[dict]:
    names = list(METHODS)
    return sorted(rows, key=lambda r: (r["params"], names.index(r["method"]) if r["method"] in names else 99))


def layers_frame(rec: dict) -> pd.DataFrame:
    """Per-layer figures of one record; numbers stay numbers so the table sorts.

    Without model code there is no output cosine, so each layer's synthetic-input output cosine
    (cos(W x, W_hat x), x ~ N(0, I)) gets its own, labelled column.
    """
    rows = []
    for la in rec["layers"]:
        row = {
            t("col_layer"): la["name"],
            t("col_shape"): " × ".join(map(str, la["shape"])),
            t("col_params"): la["params"],
            t("col_cosine"): la["weight_cosine"],
            t("col_sqnr_db"): la["sqnr_db"],
        }
        if la.get("synthetic_output_cosine") is not None:
            row[t("col_synth")] = la["synthetic_output_cosine"]
        row[t("col_range_std")] = la["range_std"]
        row[t("col_predicted")] = la["predicted_cosine"]
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty or df[t("col_predicted")].isna().all():  # no min-max model for this method: no column of blanks
        df = df.drop(columns=[t("col_predicted")], errors="ignore")
    return df


# ---- accuracy axes: cosines and any numeric task metric ---------------------------------------

LOWER_IS_BETTER = ("perplexity", "kl", "mse", "loss", "error")  # smaller wins, for task metrics labels.json lacks
COSINES = ("weight_cosine", "output_cosine", "synthetic_output_cosine")


def metric_value(rec: dict, key: str) -> float | None:
    """A cosine key, or 'task.NAME' for a numeric entry of rec['task']."""
    if key.startswith("task."):
        v = (rec.get("task") or {}).get(key[5:])
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
    return rec.get(key)


def accuracy_axes(records: list[dict]) -> list[str]:
    """The y axes the records can fill: cosines with a value, then each numeric task metric."""
    keys = [k for k in COSINES if k == "weight_cosine" or any(r.get(k) is not None for r in records)]
    names = dict.fromkeys(k for r in records for k in (r.get("task") or {}))
    return keys + [f"task.{k}" for k in names if any(metric_value(r, f"task.{k}") is not None for r in records)]


def metric_of(key: str) -> Label:
    """The label of an axis key: a record metric, or 'task.NAME' for a task metric."""
    return metric_label(key.removeprefix("task."))


def axis_label(key: str) -> str:
    """'Weight cosine'; a task metric with its unit and direction: 'KL divergence (nats/token, lower is better)'."""
    label = metric_of(key)
    if not key.startswith("task."):
        return label.heading(lang())
    better = t("lower_better") if lower_is_better(key) else t("higher_better")
    title, unit = label.title(lang()), label.unit_of(lang())
    if unit:
        return t("y_metric_unit", name=title, unit=unit, better=better)
    return t("y_task", name=title, better=better)


def metric_help(key: str) -> str:
    """A metric's one-line definition and which way is better, in the chosen language."""
    label = metric_of(key)
    if not label.known:
        return t("kpi_task_help")
    better = t("lower_better") if label.lower_is_better else t("higher_better")
    return t("metric_help", definition=label.definition(lang()), better=better)


def lower_is_better(key: str) -> bool:
    """A task metric where smaller wins: as qcore/labels.json says, or by its name where the file lacks it."""
    if not key.startswith("task."):
        return False
    label = metric_of(key)
    return label.lower_is_better if label.known else any(w in key[5:].lower() for w in LOWER_IS_BETTER)


def front_of(records: list[dict], key: str) -> list[bool]:
    """The Pareto front over bpw (smaller wins) and the metric (larger wins, or smaller where it should)."""
    sign = -1.0 if lower_is_better(key) else 1.0
    pts = [{"bpw": r["bpw"], "y": None if (v := metric_value(r, key)) is None else sign * v} for r in records]
    return pareto_front(pts, "bpw", "y")


def scaling_frame(rows: list[dict]) -> pd.DataFrame:
    """The reference report's table with our figures beside its own (formatted like the report)."""
    out = []
    for r in method_order(rows):
        ref = reference_row(r["source"], r["method"]) or {}
        out.append(
            {
                t("col_model"): r["source"],
                t("col_params"): f"{r['params']:,}",
                t("col_method"): r["method"],
                t("col_size"): fmt_bytes(r["quantized_bytes"]),
                t("col_ratio"): fmt_ratio(r["compression_ratio"]),
                t("col_ratio_ref"): fmt_ratio(ref.get("compression_ratio")),
                t("col_theoretical"): fmt_ratio(r["theoretical_ratio"]),
                t("col_cosine"): fmt_cos(r["weight_cosine"]),
                t("col_cosine_ref"): f"{ref['weight_cosine']:.4f}" if ref else "n/a",
                t("col_sqnr"): fmt_db(r["sqnr_db"]),
                t("col_band"): band(r["quality"]),
                t("col_time"): fmt_secs(r["quant_seconds"]),
                t("col_time_ref"): f"{ref['quant_seconds']:.2f} s" if ref else "n/a",
            }
        )
    return pd.DataFrame(out)


def compare_frame(records: list[dict], labels: list[str], front: list[bool]) -> pd.DataFrame:
    axes = accuracy_axes(records)
    rows = []
    for r, label, on_front in zip(records, labels, front, strict=True):
        row = {t("col_config"): label, t("col_pareto"): on_front, t("col_bpw"): r["bpw"]}
        row[t("col_ratio_num")] = r["compression_ratio"]
        row.update({axis_label(k): metric_value(r, k) for k in axes})
        row.update({t("col_sqnr_db"): r["sqnr_db"], t("col_band"): band(r["quality"])})
        row.update({t("col_time_s"): r["quant_seconds"], t("col_size"): fmt_bytes(r["quantized_bytes"])})
        rows.append(row)
    return pd.DataFrame(rows)


def has_levels(result: RunResult, name: str) -> bool:
    """Whether a layer holds one grid per group (a row-mixed tensor has no single level grid)."""
    return isinstance(result.quantized.get(name), QuantizedTensor)


def layer_view(result: RunResult, model: Model, name: str, row: int, group: int) -> dict | None:
    """One group of one row of a quantized layer, as plain lists: weights, levels and how many use each."""
    qt = result.quantized.get(name)
    if not isinstance(qt, QuantizedTensor):
        return None
    W = model.tensors[name]
    usage = level_usage(qt, row, group).tolist()
    return {
        "name": name,
        "row": row,
        "group": group,
        "bits": qt.bits,
        "weights": group_weights(W, qt, row, group).tolist(),
        "levels": group_levels(qt, row, group).tolist(),
        "usage": usage,
        "edge_share": (usage[0] + usage[-1]) / max(sum(usage), 1),
        "used": sum(1 for u in usage if u),
    }


def layer_shape(result: RunResult, name: str) -> tuple[int, int]:
    """(rows, groups) of a quantized layer: the ranges of the row and group pickers."""
    qt = result.quantized[name]
    return qt.q.shape[0], qt.scale.shape[1]
