"""Glue for the Extrapolate page: target architectures, method choices, the cached accuracy fits, and the tables
and sentences that explain the figures.

Every row is qcore.api.extrapolate for one ExtrapolationSpec: the same call `python -m qcore extrapolate` makes,
and the row carries the spec whose command line prints it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import pandas as pd
import streamlit as st

from qcore import METHODS, ExtrapolationSpec, Policy, QcoreError, Target, get_method
from qcore.analysis.accuracy import AccuracyFit, fit_accuracy
from qcore.analysis.archs import ARCHS
from qcore.analysis.reference import REFERENCE_PREDICTIONS
from qcore.api.extrapolate import extrapolate as qcore_extrapolate
from qcore.api.specs import MethodSpec, as_options
from qcore.format import fmt_bytes, fmt_cos, fmt_pct, fmt_ratio
from ui.cache import CALLS
from ui.i18n import t
from ui.sidebar import method_options
from ui.tables import spec_label

DEFAULT_ARCHS = ["Qwen3-0.6B", "LLaMA-7B"]
DEFAULT_METHODS = ["int8", "int2", "rtn 4b g128"]
RTN_CHOICES = {"rtn 2b g128": (2, 128), "rtn 3b g128": (3, 128), "rtn 4b g128": (4, 128), "rtn 4b g64": (4, 64),
               "rtn 4b per-ch": (4, 0), "rtn 8b g128": (8, 128)}  # fmt: skip
KEPT_KINDS = {"embedding": "quantize_embeddings", "head": "quantize_head"}  # kinds a policy may keep in FP16


def method_choices() -> dict[str, MethodSpec]:
    """Choice key -> method spec: every registered method with the options set for it in the sidebar, and rtn at a
    few common settings besides."""
    out: dict[str, MethodSpec] = {}
    for name in METHODS:
        out[name] = MethodSpec(name, method_options(name))
        if name == "rtn":
            for key, (bits, group) in RTN_CHOICES.items():
                out[key] = MethodSpec(
                    "rtn", as_options({"bits": bits, "group_size": group, "sym": False, "clip": False})
                )
    return out


def choice_labels(choices: dict[str, MethodSpec]) -> dict[str, str]:
    """How each choice reads in the picker: its short label; the sidebar's rtn says where its options come from."""
    return {k: t("x_rtn_sidebar", label=spec_label(s)[4:]) if k == "rtn" else spec_label(s) for k, s in choices.items()}


@st.cache_data(show_spinner=False, max_entries=32)
def accuracy_fit(spec: MethodSpec, _progress=None) -> AccuracyFit:
    """qcore's fit_accuracy: quantizes the three presets and fits SQNR against row length (slow: cached)."""
    CALLS["fit"] += 1
    return fit_accuracy(spec.method, dict(spec.options), progress=_progress)


@dataclass(frozen=True)
class ExtrapolationRun:
    """Every target architecture x method spec, under one policy."""

    targets: tuple[Target, ...]
    specs: tuple[MethodSpec, ...]
    policy: Policy


@st.cache_data(show_spinner=False, max_entries=16)
def extrapolate(job: ExtrapolationRun, _progress=None) -> dict:
    """qcore's extrapolate for every target x method spec, one accuracy fit per method spec.

    Returns {"archs": {name: Arch}, "fits": {label: AccuracyFit or the reason it failed}, "rows": [...]}, each row
    being the extrapolation's dict plus label, spec (the ExtrapolationSpec that prints it) and options.
    """
    CALLS["extrapolate"] += 1
    targets, specs, policy = job.targets, job.specs, job.policy
    resolved = [target.resolve() for target in targets]
    archs = {arch.name: arch for arch in resolved}
    total, done = len(specs) * (1 + len(targets)), 0
    report = _progress or (lambda done, total, what: None)  # each label names the item about to run, not the last
    fits: dict[str, AccuracyFit | str] = {}
    for spec in specs:
        label = t("x_step_fitting", label=spec_label(spec))
        report(done, total, label)

        def preset_step(_done: int, _total: int, what: str, at: int = done, label: str = label) -> None:
            report(at, total, f"{label} · {what}")  # the fit's own steps: which preset is being quantized

        try:
            fits[spec_label(spec)] = accuracy_fit(spec, preset_step)
        except QcoreError as e:
            fits[spec_label(spec)] = str(e)
        done += 1
    rows = []
    for target, arch in zip(targets, resolved, strict=True):
        for spec in specs:
            report(done, total, t("x_step_sizing", arch=arch.name, label=spec_label(spec)))
            fit = fits[spec_label(spec)]
            x = ExtrapolationSpec.make(target, spec.method, spec.options, policy)
            if isinstance(fit, str):  # no fit: sizes only (the page says why, the row's line says --no-accuracy)
                x = replace(x, accuracy=False)
            row = qcore_extrapolate(x, fit=None if isinstance(fit, str) else fit)
            row.update(label=spec_label(spec), options=spec.options, spec=x, accuracy=row.get("accuracy"))
            rows.append(row)
            done += 1
    report(total, total, t("x_step_done"))
    return {"archs": archs, "fits": fits, "rows": rows}


# ---- tables and sentences ----------------------------------------------------------------------


def sizes_frame(rows: list[dict]) -> pd.DataFrame:
    out = []
    for r in rows:
        acc = r["accuracy"] or {}
        out.append(
            {
                t("col_arch"): r["arch"], t("col_params"): r["params"], t("col_method"): r["label"],
                t("col_fp16"): fmt_bytes(r["fp16_bytes"]), t("col_size"): fmt_bytes(r["quantized_bytes"]),
                t("col_ratio_num"): r["compression_ratio"], t("col_saving"): fmt_pct(r["memory_saving"]),
                t("col_bpw"): r["bpw"], t("col_cos_x"): acc.get("weight_cosine"),
                t("col_cos_band"): f"{fmt_cos(acc['weight_cosine_low'])} – {fmt_cos(acc['weight_cosine_high'])}"
                if acc else t("na"),
                t("col_kind"): t("extrapolated"),
            }
        )  # fmt: skip
    return pd.DataFrame(out)


def ideal_bits(method: str, options) -> float | None:
    """The bits a weight would take if codes were everything: the method's bits (or its bpw target)."""
    cfg = get_method(method).make_config(**dict(options))
    return getattr(cfg, "target_bpw", None) or getattr(cfg, "bits", None)


def kept_fp16(r: dict) -> tuple[list[str], int]:
    """The kinds (embedding, head) this row keeps in FP16, and their bytes."""
    kinds = [k for k, field in KEPT_KINDS.items() if not r["policy"][field] and r["bytes_by_kind"][k]]
    return kinds, sum(r["bytes_by_kind"][k] for k in kinds)


def kinds_text(kinds: list[str]) -> str:
    return t("and").join(t(f"kind_{k}") for k in kinds)


def explanations(rows: list[dict]) -> list[str]:
    """Why a ratio falls short of 16 / bits, for each row where FP16 tensors are 5% or more of the file."""
    out = []
    for r in rows:
        kinds, kept = kept_fp16(r)
        bits = ideal_bits(r["method"], r["options"])
        if not kinds or kept < 0.05 * r["quantized_bytes"] or not bits:
            continue
        out.append(
            t("x_why", arch=r["arch"], label=r["label"], kinds=kinds_text(kinds), kept=fmt_bytes(kept),
              share=fmt_pct(kept / r["quantized_bytes"]), size=fmt_bytes(r["quantized_bytes"]),
              ratio=fmt_ratio(r["compression_ratio"]), ideal=fmt_ratio(16 / bits), bits=f"{bits:g}",
              alt=fmt_ratio(r["all_quantized_ratio"]))
        )  # fmt: skip
    return out


def _parse_band(text: str) -> tuple[float, float] | None:
    """The report's cosine text ('>0.99', '0.82-0.85') as (low, high)."""
    nums = [float(x) for x in re.findall(r"\d+\.\d+", text)]
    if text.strip().startswith(">") and nums:
        return nums[0], 1.0
    return (nums[0], nums[1]) if len(nums) == 2 else None


def reference_rows(rows: list[dict]) -> list[tuple[dict, dict]]:
    """(our row, the report's prediction) for every architecture and method the report predicted."""
    return [(r, REFERENCE_PREDICTIONS[(r["arch"], r["method"])]) for r in rows if (r["arch"], r["method"]) in REFERENCE_PREDICTIONS]  # fmt: skip


def reference_frame(pairs: list[tuple[dict, dict]]) -> pd.DataFrame:
    out = []
    for r, ref in pairs:
        acc = r["accuracy"]
        lo, hi = ref["ratio"]
        out.append(
            {
                t("col_arch"): r["arch"], t("col_method"): r["label"],
                t("col_ratio_ref"): f"{lo:.2f}x" if lo == hi else f"{lo:.2f}–{hi:.2f}x",
                t("col_ratio"): fmt_ratio(r["compression_ratio"]),
                t("col_size_ref"): ref["size"], t("col_size"): fmt_bytes(r["quantized_bytes"]),
                t("col_cosine_ref"): ref["cosine"], t("col_cos_x"): fmt_cos(acc["weight_cosine"]) if acc else t("na"),
                t("col_saving_ref"): ref["saving"], t("col_saving"): fmt_pct(r["memory_saving"]),
            }
        )  # fmt: skip
    return pd.DataFrame(out)


def reference_notes(pairs: list[tuple[dict, dict]]) -> list[str]:
    """The differences from the report, in words computed from the figures."""
    out = []
    for r, ref in pairs:
        lo, hi = ref["ratio"]
        kinds, kept = kept_fp16(r)
        ratio = r["compression_ratio"]
        if lo * 0.95 <= ratio <= hi * 1.05:
            text = t("x_ref_agree", arch=r["arch"], label=r["label"], ratio=fmt_ratio(ratio))
        elif kinds:
            text = t("x_ref_fp16", arch=r["arch"], label=r["label"], kinds=kinds_text(kinds),
                     share=fmt_pct(kept / r["quantized_bytes"]), ratio=fmt_ratio(ratio), ref=f"{lo:g}x",
                     alt=fmt_ratio(r["all_quantized_ratio"]))  # fmt: skip
        else:
            text = t("x_ref_meta", arch=r["arch"], label=r["label"], ratio=fmt_ratio(ratio), ref=f"{lo:g}x",
                     meta=fmt_pct(r["breakdown"]["metadata_bytes"] / r["quantized_bytes"]))  # fmt: skip
        band, acc = _parse_band(ref["cosine"]), r["accuracy"]
        if band and acc:
            cos = acc["weight_cosine"]
            where = "inside" if band[0] <= cos <= band[1] else "below" if cos < band[0] else "above"
            text += " " + t(f"x_ref_cos_{where}", cos=fmt_cos(cos), ref=ref["cosine"])
        out.append(text)
    return out


def accuracy_frame(rows: list[dict], fits: dict) -> pd.DataFrame:
    """Every row's extrapolated accuracy with its band and the fit behind it (the accuracy CSV)."""
    out = []
    for r in rows:
        acc, fit = r["accuracy"] or {}, fits.get(r["label"])
        ok = not isinstance(fit, str) and fit is not None
        out.append(
            {
                t("col_arch"): r["arch"], t("col_method"): r["label"], t("col_cos_x"): acc.get("weight_cosine"),
                t("col_cos_low"): acc.get("weight_cosine_low"), t("col_cos_high"): acc.get("weight_cosine_high"),
                t("col_sqnr_x"): acc.get("sqnr_db"), t("col_band_db"): acc.get("band_db"),
                t("col_backtest_db"): acc.get("backtest_db_error"), t("col_backtest_cos"): acc.get("backtest_cosine_error"),
                t("col_fit_a"): fit.a if ok else None, t("col_fit_b"): fit.b if ok else None,
                t("col_fit_res"): fit.residual_db if ok else None, t("col_fit_n"): len(fit.points) if ok else None,
                t("col_fit_note"): "" if ok else (fit or t("na")),
            }
        )  # fmt: skip
    return pd.DataFrame(out)


def backtest_lines(fits: dict) -> list[str]:
    out = []
    for label, fit in fits.items():
        if isinstance(fit, str):
            out.append(t("x_fit_failed", label=label, msg=fit))
            continue
        out.append(
            t("x_backtest", label=label, db=f"{fit.backtest_db:+.3f}", cos=f"{fit.backtest_cosine:+.5f}",
              band=f"{fit.band_db:.3f}", res=f"{fit.residual_db:.3f}", n=len(fit.points))
        )  # fmt: skip
    return out


def sqnr_to_cosine(db: float) -> float:
    """Weight cosine of a tensor with SQNR db (noise uncorrelated with W): 1 / sqrt(1 + 10^(-db/10))."""
    return 1 / math.sqrt(1 + 10 ** (-db / 10))


def catalog() -> list[str]:
    return list(ARCHS)
