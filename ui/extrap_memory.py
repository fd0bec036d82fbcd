"""Glue for the Extrapolate page's memory what-if: its inputs (KV cache, overhead allowance, a GPU from the shipped
list), the table of weights + KV cache + overhead against fixed budgets and the GPU, with qcore's tokens/s bounds,
and the CSV downloads of the page's tables.

Every figure is qcore.analysis.gpus' (memory_needed, gpu_what_if): the same call `python -m qcore extrapolate
--gpu NAME` makes, so the row's command line prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd
import streamlit as st

from qcore.analysis.archs import kv_cache_bytes
from qcore.analysis.gpus import GPUS, Overhead, get_gpu, gpu_what_if, memory_needed
from qcore.format import GIB, fmt_bytes
from ui.i18n import choice_labels, t

BUDGETS_GIB = (8, 16, 24, 80)


@dataclass(frozen=True)
class WhatIf:
    """The memory section's settings: KV cache (context tokens, batch, bits), overhead allowance, GPU ("" none)."""

    context: int
    batch: int
    kv_bits: int
    overhead: Overhead
    gpu: str


def what_if_inputs() -> WhatIf:
    """The memory section's widgets (keyed, kept for the session)."""
    c1, c2, c3, c4, c5 = st.columns(5)
    context = c1.number_input(t("x_context"), 1, 10_000_000, 4096, 1024, key="x_context", persist_state="session")
    batch = c2.number_input(t("x_batch"), 1, 4096, 1, key="x_batch", persist_state="session")
    kv_bits = c3.segmented_control(
        t("x_kv"), [16, 8, 4], default=16, required=True, key="x_kv", persist_state="session",
        format_func={16: "FP16", 8: "8-bit", 4: "4-bit"}.get,
    )  # fmt: skip
    default = Overhead()
    pct = c4.number_input(
        t("x_over_pct"), 0.0, 200.0, default.pct, 5.0, key="x_over_pct", help=t("x_over_help"), persist_state="session"
    )
    fixed = c5.number_input(
        t("x_over_gib"), 0.0, 64.0, default.fixed_gib, 0.25, key="x_over_gib", help=t("x_over_help"),
        persist_state="session",
    )  # fmt: skip
    labels = {"": t("x_gpu_none"), **{g.name: t("x_gpu_choice", gpu=g.name, mem=f"{g.memory_gib:g}",
                                                 bw=f"{g.bandwidth_gbs:g}") for g in GPUS.values()}}  # fmt: skip
    gpu = st.selectbox(
        t("x_gpu"), list(labels), key="x_gpu", help=t("x_gpu_help"), format_func=choice_labels("x_gpu", labels),
        persist_state="session",
    )  # fmt: skip
    return WhatIf(int(context), int(batch), int(kv_bits), Overhead(pct, fixed), gpu or "")


def gpu_column(gpu: str) -> str:
    g = get_gpu(gpu)
    return t("col_gpu_fit", gpu=g.name, mem=f"{g.memory_gib:g}")


def fit_mark(room: float) -> str:
    return t("fits_yes", room=fmt_bytes(room)) if room >= 0 else t("fits_no", room=fmt_bytes(-room))


def variants(result: dict, name: str) -> list[tuple[str, int, dict]]:
    """(label, file bytes, bytes by kind) of an architecture's FP16 baseline and each extrapolated method."""
    rows = [r for r in result["rows"] if r["arch"] == name]
    if not rows:
        return []
    return [("FP16", rows[0]["fp16_bytes"], rows[0]["fp16_bytes_by_kind"]),
            *((r["label"], r["quantized_bytes"], r["bytes_by_kind"]) for r in rows)]  # fmt: skip


def memory_frame(result: dict, w: WhatIf) -> pd.DataFrame:
    """Weights + KV cache + overhead against each fixed budget (✓ headroom / ✗ shortfall) and, with a GPU, against
    its memory, with the decode upper bound and the prefill estimate in tokens/s (empty where it does not fit)."""
    out = []
    for name, arch in result["archs"].items():
        kv = kv_cache_bytes(arch, w.context, w.batch, w.kv_bits)
        for label, weights, by_kind in variants(result, name):
            mem = memory_needed(weights, kv, w.overhead)
            row = {t("col_arch"): name, t("col_weights"): label, t("col_size"): fmt_bytes(weights),
                   t("col_kv"): fmt_bytes(kv), t("col_overhead"): fmt_bytes(mem["overhead_bytes"]),
                   t("col_total"): fmt_bytes(mem["needed_bytes"])}  # fmt: skip
            for budget in BUDGETS_GIB:
                row[f"{budget} GiB"] = fit_mark(budget * GIB - mem["needed_bytes"])
            if w.gpu:
                g = gpu_what_if(arch, weights, by_kind, get_gpu(w.gpu), w.context, w.batch, w.kv_bits, w.overhead)
                row[gpu_column(w.gpu)] = fit_mark(g["headroom_bytes"])
                row[t("col_decode")] = g["decode_tokens_per_s"]
                row[t("col_prefill")] = g["prefill_tokens_per_s"]
            out.append(row)
    return pd.DataFrame(out)


def show_memory(df: pd.DataFrame, key: str) -> None:
    """The memory table, tokens/s with one decimal (kept as numbers, so they sort and export exactly)."""
    config = {t(k): st.column_config.NumberColumn(format="%.1f") for k in ("col_decode", "col_prefill") if t(k) in df}
    st.dataframe(df, hide_index=True, column_config=config, key=key)


def context_note(result: dict, w: WhatIf) -> str | None:
    """Which architectures the chosen context is longer than (their KV cache is sized all the same), or None."""
    over = [f"{name} ({arch.max_context:,})" for name, arch in result["archs"].items() if w.context > arch.max_context]
    return t("x_context_over", context=f"{w.context:,}", archs=t("and").join(over)) if over else None


def gpu_notes(w: WhatIf) -> list[str]:
    """The chosen card's figures and what the tokens/s columns are: an upper bound and an estimate."""
    if not w.gpu:
        return []
    g = get_gpu(w.gpu)
    spec = t("x_gpu_spec", gpu=g.name, mem=f"{g.memory_gib:g}", bw=f"{g.bandwidth_gbs:g}", tflops=f"{g.tflops:g}")
    return [spec + (f" ({g.note})" if g.note else ""), t("x_gpu_caption", bw=f"{g.bandwidth_gbs:g}")]


def csv_button(df: pd.DataFrame, label_key: str, file_name: str, key: str) -> None:
    """A download of a table as CSV (UTF-8 with a byte-order mark, so spreadsheets read the Chinese headers)."""
    st.download_button(
        t(label_key), df.to_csv(index=False).encode("utf-8-sig"), file_name, "text/csv", key=key,
        icon=":material/download:", on_click="ignore",
    )  # fmt: skip


def cli_lines(rows: list[dict], w: WhatIf) -> str:
    """The `python -m qcore extrapolate` line of every row, with the memory section's settings (and GPU)."""
    return "\n".join(
        replace(
            r["spec"], context=w.context, batch=w.batch, kv_bits=w.kv_bits, gpu=w.gpu, overhead=w.overhead
        ).command_line()
        for r in rows
    )
