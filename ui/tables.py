"""Records -> display strings, DataFrames and small derived views. No Streamlit widgets, no tensor math.

Figures use the CLI's formats (qcore.report.fmt_*), so the dashboard prints what the CLI prints.
"""

from __future__ import annotations

import pandas as pd

from qcore import METHODS, RunResult, load_preset
from qcore.inspect import group_levels, group_weights, level_usage
from qcore.reference import reference_row
from qcore.report import fmt_bytes, fmt_cos, fmt_db
from ui.cache import Options, Spec, as_options
from ui.i18n import band, t

__all__ = ["fmt_bytes", "fmt_cos", "fmt_db"]


def fmt_ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def fmt_secs(x: float) -> str:
    return f"{x:.4f} s"


def fmt_pct(x: float) -> str:
    return f"{x:.1%}"


def options_text(options: Options) -> str:
    return ", ".join(f"{k}={v}" for k, v in options) or t("no_options")


def spec_label(method: str, options: Options) -> str:
    """A short name for a configuration: 'int8', 'rtn 4b g64 clip', 'rtn 2b per-ch'."""
    o = dict(options)
    if method != "rtn" or not o:
        extra = [f"{k}={v}" for k, v in options]
        return " ".join([method, *extra])
    parts = [f"rtn {o.get('bits', 4)}b", f"g{o['group_size']}" if o.get("group_size") else "per-ch"]
    parts += [name for name in ("sym", "clip") if o.get(name)]
    return " ".join(parts)


def compare_specs(bits: list[int], groups: list[int], clips: list[bool], baselines: list[str]) -> tuple[Spec, ...]:
    """The Compare sweep: each baseline method with its defaults, then rtn over bits x group size x clip."""
    specs = [(m, ()) for m in baselines if m in METHODS]
    for b in sorted(bits):
        for g in sorted(groups):
            for c in sorted(clips):
                specs.append(("rtn", as_options({"bits": b, "group_size": g, "sym": False, "clip": c})))
    return tuple(specs)


def method_order(rows: list[dict]) -> list[dict]:
    names = list(METHODS)
    return sorted(rows, key=lambda r: (r["params"], names.index(r["method"]) if r["method"] in names else 99))


def layers_frame(rec: dict) -> pd.DataFrame:
    """Per-layer figures of one record; numbers stay numbers so the table sorts."""
    return pd.DataFrame(
        [
            {
                t("col_layer"): la["name"],
                t("col_shape"): " × ".join(map(str, la["shape"])),
                t("col_params"): la["params"],
                t("col_cosine"): la["weight_cosine"],
                t("col_sqnr_db"): la["sqnr_db"],
                t("col_range_std"): la["range_std"],
                t("col_predicted"): la["predicted_cosine"],
            }
            for la in rec["layers"]
        ]
    )


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
    return pd.DataFrame(
        [
            {
                t("col_config"): label,
                t("col_pareto"): on_front,
                t("col_bpw"): r["bpw"],
                t("col_ratio_num"): r["compression_ratio"],
                t("col_cosine"): r["weight_cosine"],
                t("col_output_cosine"): r["output_cosine"],
                t("col_sqnr_db"): r["sqnr_db"],
                t("col_band"): band(r["quality"]),
                t("col_time_s"): r["quant_seconds"],
                t("col_size"): fmt_bytes(r["quantized_bytes"]),
            }
            for r, label, on_front in zip(records, labels, front, strict=True)
        ]
    )


def extrapolation_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                t("col_method"): r["method"],
                t("col_model"): r["model"],
                t("col_params"): f"{r['params']:,}",
                t("col_kind"): t("measured") if r["measured"] else t("extrapolated"),
                t("col_bpw"): f"{r['bpw']:.3f}",
                t("col_fp16"): fmt_bytes(r["fp16_bytes"]),
                t("col_size"): fmt_bytes(r["quantized_bytes"]),
                t("col_ratio"): fmt_ratio(r["compression_ratio"]),
                t("col_saving"): fmt_pct(r["memory_saving"]),
                t("col_saved"): fmt_bytes(r["saved_bytes"]),
            }
            for r in rows
        ]
    )


def layer_view(result: RunResult, preset: str, name: str, row: int, group: int) -> dict | None:
    """One group of one row of a quantized layer, as plain lists: weights, levels and how many use each."""
    qt = result.quantized.get(name)
    if qt is None or not hasattr(qt, "q"):
        return None
    W = load_preset(preset).tensors[name]
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
