"""The size model: artifact bytes for any list of tensors, quantized by any method, without quantizing them.

It applies the storage's own rules (formats.table.Layout): packed codes in chunks, per-group scales and zeros in
the dtypes the method really produces (learned from a 2-row proxy), code books per chunk, nested scales, FP16 for
what the policy keeps, and the Parquet container measured on a skeleton artifact with the same entries.
Checked against written files for every method in the tests.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from ..formats.storage import ROW_GROUP_BYTES
from ..formats.table import (
    CHUNK_BYTES,
    FILE_METADATA,
    NESTED_SCALE,
    ROTATION,
    SCHEMA,
    START,
    STRING_COLUMNS,
    Layout,
    layout_of,
)
from ..methods.coded import CodedTensor
from ..methods.quant import QuantizedTensor
from ..methods.registry import config_dict, get_method
from ..models.model import Model
from ..models.policy import Policy
from .archs import KINDS, Arch, TensorSpec

PROXY_STD = 0.02  # proxies are N(0, 0.02^2), typical of trained transformer weights


@lru_cache(maxsize=256)
def _proxy(method: str, options: tuple, n: int):
    """The method's output on a 2-row proxy with `n` columns (its layout), and its config. A calibrated method with a
    storage twin is laid out by the twin: an (n, n) Hessian for an 18944-column row is 1.4 GiB and a minute to factor.
    """
    m = get_method(method)
    cfg = m.make_config(**dict(options))
    W = torch.randn(2, n, generator=torch.Generator().manual_seed(0)) * PROXY_STD
    if m.storage_twin is not None:
        twin, twin_options = m.storage_twin(cfg)
        return get_method(twin).quantize(W, get_method(twin).make_config(**twin_options)), cfg
    return m.quantize(W, cfg, H=torch.eye(n) if m.needs_calibration else None), cfg


def budget_method(method: str, options: dict) -> bool:
    """Whether the method allocates bits to meet a file budget (mixed) instead of storing a fixed layout."""
    return tensor_layout(method, options, (1, 1)) is None


def tensor_layout(method: str, options: dict, shape: tuple[int, ...]) -> Layout | None:
    """How a tensor of `shape` is stored by the method (None for a budget method, which has no fixed layout)."""
    out, n = shape[0], math.prod(shape[1:])
    qt, _ = _proxy(method, tuple(sorted(options.items())), n)
    return layout_of(qt).with_rows(out) if isinstance(qt, QuantizedTensor | CodedTensor) else None


def tensor_bytes(method: str, options: dict, shape: tuple[int, ...]) -> tuple[int, int]:
    """(payload, metadata) bytes of one quantized tensor, by the storage's own rules. A budget method (mixed) has no
    fixed layout: this is its floor, every row at min_bits with a float16 scale and a width byte per row."""
    layout = tensor_layout(method, options, shape)
    if layout is None:
        cfg = get_method(method).make_config(**options)
        return math.ceil(cfg.min_bits * math.prod(shape) / 8), 3 * shape[0]
    return layout.nbytes()


def role(kind: str) -> str:
    return kind if kind in ("head", "embedding") else ""


def predict_size(
    entries: list[TensorSpec], method: str | None, options: dict | None = None, policy: Policy = Policy()
) -> dict:
    """Predicted artifact bytes for tensors; method None = the FP16 baseline.

    Returns payload, metadata, passthrough, container and file bytes, plus bytes by kind.
    """
    options = options or {}
    by_kind, quantized = dict.fromkeys(KINDS, 0), dict.fromkeys(KINDS, 0)
    payload = metadata = passthrough = 0
    skeleton: list[Row] = []
    for e in entries:
        if method is not None and policy.decide(e.name, e.shape, role(e.kind)) == "quantize":
            p, m = tensor_bytes(method, options, e.shape)
            payload, metadata = payload + p, metadata + m
            by_kind[e.kind] += p + m
            quantized[e.kind] += p + m
            skeleton += rows_of(e.name, method, options, e.shape, p + m)
        else:
            b = 2 * math.prod(e.shape)
            passthrough += b
            by_kind[e.kind] += b
            skeleton.append(Row(e.name, "fp16", b, 1 + b // CHUNK_BYTES))
    container = container_bytes(skeleton, method, options)
    extra = budget_extra(entries, method, options, payload + metadata + passthrough + container)
    if extra:  # a budget method spends its target, above the floor, on quantized tensors by their sizes
        for k in KINDS:
            by_kind[k] += round(extra * quantized[k] / max(payload + metadata, 1))
        payload += extra
    return {
        "payload_bytes": payload,
        "metadata_bytes": metadata,
        "passthrough_bytes": passthrough,
        "container_bytes": container,
        "file_bytes": payload + metadata + passthrough + container,
        "bytes_by_kind": by_kind,
    }


def budget_extra(entries: list[TensorSpec], method: str | None, options: dict, floor: int) -> int:
    """Bytes a budget method (mixed) adds above its floor: its file is target_bpw x all params (or the floor, where
    the target is below what the model allows)."""
    if method is None or not budget_method(method, options):
        return 0
    cfg = get_method(method).make_config(**options)
    target = math.floor(cfg.target_bpw * sum(math.prod(e.shape) for e in entries) / 8)
    return max(0, target - floor)


class Row(NamedTuple):
    """An entry of the skeleton artifact: its name, encoding, bytes and how many chunk rows it spans; a nested
    entry also its own method and config (a nested scale's config is about as long as this one's)."""

    name: str
    encoding: str
    nbytes: int
    chunks: int
    method: str | None = None
    config: str | None = None


def rows_of(name: str, method: str, options: dict, shape: tuple[int, ...], nbytes: int) -> list[Row]:
    """The skeleton rows of a quantized tensor: its chunks, and its nested scales' entry (as the proxy's)."""
    layout = tensor_layout(method, options, shape)
    if layout is None:
        return [Row(name, "affine", nbytes, 1)]
    proxy = _proxy(method, tuple(sorted(options.items())), math.prod(shape[1:]))[0]
    encoding = (
        "codebook" if layout.codebook_values else "affine" if isinstance(proxy, QuantizedTensor) else proxy.scheme
    )
    out = [Row(name, encoding, nbytes, layout.chunks)]
    nested = getattr(proxy, "scale_q", None)
    if nested is not None:
        encoding = "codebook" if nested.codebook is not None else "affine"
        out.append(Row(name + NESTED_SCALE, encoding, 0, 1, nested.method, json.dumps(nested.config, sort_keys=True)))
    if layout.rotated:
        out.append(Row(name + ROTATION, "signs", 0, 1, "rotation", "{}"))
    if layout.start[0]:
        out.append(Row(name + START, "start", 0, 1))
    return out


def container_bytes(skeleton: list[Row], method: str | None, options: dict) -> int:
    """Parquet framing measured on a skeleton artifact: the same rows and row groups, empty payloads."""
    config = "{}"
    if method is not None:
        config = json.dumps(config_dict(get_method(method).make_config(**options)), sort_keys=True)
    buf = pa.BufferOutputStream()
    writer = pq.ParquetWriter(
        buf, SCHEMA, compression="none", use_dictionary=STRING_COLUMNS, write_statistics=False, store_schema=False
    )
    writer.add_key_value_metadata(FILE_METADATA)
    rows, pending, pages = [], 0, 0
    for r in skeleton:
        quantized, affine = r.encoding != "fp16", r.encoding in ("affine", "codebook")
        scaled = quantized and r.encoding not in ("signs", "start")
        for _ in range(r.chunks):
            rows.append(
                {"name": r.name, "encoding": r.encoding, "method": r.method or (method if quantized else "fp16"),
                 "config": r.config or (config if quantized else "{}"), "shape": [0, 0], "dtype": "float32", "bits": 0,
                 "group_size": 0, "row_start": 0, "rows": 0, "codes": b"", "scale": b"" if scaled else None,
                 "scale_dtype": "float16" if scaled else None, "zero": b"" if affine else None,
                 "zero_dtype": "uint8" if affine else None, "zero_shared": False,
                 "codebook": b"" if r.encoding == "codebook" else None}
            )  # fmt: skip
        pending += r.nbytes
        pages += r.nbytes // (1 << 20)  # page headers of large values, about one per MiB
        if pending >= ROW_GROUP_BYTES:
            writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), row_group_size=len(rows))
            rows, pending = [], 0
    if rows:
        writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), row_group_size=len(rows))
    writer.close()
    return len(buf.getvalue()) + 24 * pages


def model_entries(model: Model) -> list[TensorSpec]:
    """A model's tensors as size-model entries, so presets and uploads go through the same model."""
    out = []
    for name in model.tensors:
        shape = model.shape_of(name)
        kind = "norm" if len(shape) < 2 else (model.role(name) or "mlp")
        out.append(TensorSpec(name, kind, shape))
    return out


def arch_sizes(arch: Arch, method: str, options: dict | None = None, policy: Policy = Policy()) -> dict:
    """FP16 and quantized artifact sizes for an architecture, with ratio, saving and the breakdown."""
    fp16 = predict_size(arch.tensors(), None)
    quant = predict_size(arch.tensors(), method, options, policy)
    return {
        "arch": arch.name,
        "method": method,
        "params": arch.params,
        "params_by_kind": arch.params_by_kind(),
        "fp16_bytes": fp16["file_bytes"],
        "quantized_bytes": quant["file_bytes"],
        "compression_ratio": fp16["file_bytes"] / quant["file_bytes"],
        "memory_saving": 1 - quant["file_bytes"] / fp16["file_bytes"],
        "bpw": 8 * quant["file_bytes"] / arch.params,
        "fp16_bytes_by_kind": fp16["bytes_by_kind"],
        "bytes_by_kind": quant["bytes_by_kind"],
        "breakdown": {k: quant[k] for k in ("payload_bytes", "metadata_bytes", "passthrough_bytes", "container_bytes")},
        "policy": {"quantize_embeddings": policy.quantize_embeddings, "quantize_head": policy.quantize_head},
    }
