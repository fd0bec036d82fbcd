"""The Parquet artifact: one row per tensor chunk, written in a stream, atomically.

Layout (format version 1). Each row is a run of consecutive output rows of one tensor, viewed as
(out, in); a tensor too big for one chunk spans several rows, in order.

    name        string        tensor name
    encoding    string        "affine" (W_hat = (q - zero) * scale), "codebook" (codebook[q] * scale),
                              "fp16" (codes holds the float16 values, little-endian), or "rowmix"
                              (codes holds one uint8 bit width per row; the rows of width b are the
                              tensor NAME + "::b" + b, in ascending row order)
    method      string        method name ("fp16" for tensors kept in float16)
    config      string        the method's config as JSON
    shape       list<int64>   the original tensor shape
    dtype       string        the original dtype
    bits        int32         code width (16 for fp16)
    group_size  int32         input columns per scale, 0 = per-channel
    row_start   int64         first (out) row in this chunk
    rows        int64         rows in this chunk
    codes       binary        packed codes, see packing.BIT_ORDER, one stream per chunk
    scale       binary        per-group scales of the chunk's rows, row-major (rows, G); null when the
                              scales are double-quantized: then the tensor NAME + "::scale" (shape
                              (1, out * G)) holds them, and its dequantization is the scale
    scale_dtype string        "float16", "float32", or "nested" (double-quantized)
    zero        binary        per-group zeros (rows, G), or one value when zero_shared
    zero_dtype  string        "uint8", "float16" or "float32"
    zero_shared bool          one zero for the whole tensor (symmetric)
    codebook    binary        float32 code values, for encoding "codebook"

File key-value metadata carries the format version and the packing order. Plain pyarrow,
pandas or DuckDB read it; nothing needs an extension type.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas  # noqa: F401  pyarrow imports it on first use; load it with the module, not inside a run
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from ..errors import QcoreError
from ..methods.quant import MixedTensor, QuantizedTensor, dequantize
from .packing import BIT_ORDER, pack_codes, unpack_codes

FORMAT_VERSION = "1"
CODECS = ("none", "zstd")
CHUNK_BYTES = 16 << 20  # at most this many code bytes per row, so huge tensors stream in pieces
ROW_GROUP_BYTES = 32 << 20  # buffered bytes that trigger a row-group flush

SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("encoding", pa.string()),
        ("method", pa.string()),
        ("config", pa.string()),
        ("shape", pa.list_(pa.int64())),
        ("dtype", pa.string()),
        ("bits", pa.int32()),
        ("group_size", pa.int32()),
        ("row_start", pa.int64()),
        ("rows", pa.int64()),
        ("codes", pa.binary()),
        ("scale", pa.binary()),
        ("scale_dtype", pa.string()),
        ("zero", pa.binary()),
        ("zero_dtype", pa.string()),
        ("zero_shared", pa.bool_()),
        ("codebook", pa.binary()),
    ]
)
FILE_METADATA = {"qcore.format_version": FORMAT_VERSION, "qcore.packing": BIT_ORDER}
_STRING_COLUMNS = ["name", "encoding", "method", "config", "dtype", "scale_dtype", "zero_dtype"]
_DTYPES = {"float16": torch.float16, "float32": torch.float32, "uint8": torch.uint8}
NESTED_SCALE = "::scale"  # suffix of the entry that holds a tensor's double-quantized scales
PART = "::b"  # infix of the entries that hold a row-mixed tensor's rows of one width


def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _raw(t: torch.Tensor) -> bytes:
    return t.contiguous().numpy().tobytes()


@dataclass
class ArtifactStats:
    """Where the bytes of an artifact file go. file = payload + metadata + passthrough + container - codec_gain."""

    file_bytes: int = 0
    payload_bytes: int = 0  # packed codes of quantized tensors
    metadata_bytes: int = 0  # scales, zeros, code books
    passthrough_bytes: int = 0  # tensors kept in float16 (biases, norms, excluded tensors)
    codec_gain_bytes: int = 0  # bytes the codec saved (0 with codec "none")
    codec: str = "none"

    @property
    def container_bytes(self) -> int:
        """Parquet framing: magic, page headers, footer, schema, names and JSON configs."""
        raw = self.payload_bytes + self.metadata_bytes + self.passthrough_bytes
        return self.file_bytes + self.codec_gain_bytes - raw

    def as_dict(self) -> dict:
        return {
            "file_bytes": self.file_bytes,
            "payload_bytes": self.payload_bytes,
            "metadata_bytes": self.metadata_bytes,
            "passthrough_bytes": self.passthrough_bytes,
            "container_bytes": self.container_bytes,
            "codec_gain_bytes": self.codec_gain_bytes,
            "codec": self.codec,
        }


def encode_rows(name: str, item: QuantizedTensor | MixedTensor | torch.Tensor) -> Iterator[dict]:
    """One tensor as artifact rows (chunks of output rows), lazily. A plain tensor is stored as float16."""
    if isinstance(item, MixedTensor):
        return _encode_mixed(name, item)
    if isinstance(item, QuantizedTensor):
        return _encode_quantized(name, item)
    return _encode_fp16(name, item)


def _encode_mixed(name: str, mt: MixedTensor) -> Iterator[dict]:
    head = {
        "name": name, "encoding": "rowmix", "method": mt.method, "config": json.dumps(mt.config, sort_keys=True),
        "shape": list(mt.shape), "dtype": "float32", "bits": 0, "group_size": 0, "row_start": 0,
        "rows": mt.row_bits.shape[0], "codes": _raw(mt.row_bits.to(torch.uint8)), "scale": None,
        "scale_dtype": None, "zero": None, "zero_dtype": None, "zero_shared": False, "codebook": None,
    }  # fmt: skip
    yield head
    for b, part in sorted(mt.parts.items()):
        yield from _encode_quantized(f"{name}{PART}{b}", part)


def _encode_fp16(name: str, W: torch.Tensor) -> Iterator[dict]:
    flat = W.detach().flatten(1) if W.dim() >= 2 else W.detach().reshape(1, -1)  # (rows, cols)
    per = max(1, CHUNK_BYTES // max(2 * flat.shape[1], 1))
    common = {
        "name": name, "encoding": "fp16", "method": "fp16", "config": "{}", "shape": list(W.shape),
        "dtype": _dtype_name(W), "bits": 16, "group_size": 0, "scale": None, "scale_dtype": None,
        "zero": None, "zero_dtype": None, "zero_shared": False, "codebook": None,
    }  # fmt: skip
    for r0 in range(0, max(flat.shape[0], 1), per):
        part = flat[r0 : r0 + per].to(torch.float16)  # one chunk converted at a time
        yield {**common, "row_start": r0, "rows": len(part), "codes": _raw(part)}


def _encode_quantized(name: str, qt: QuantizedTensor) -> Iterator[dict]:
    nested = qt.scale_q is not None
    out, n = qt.q.shape
    per = max(1, CHUNK_BYTES * 8 // max(qt.bits * n, 1))
    shared = qt.zero.numel() == 1 and out * qt.scale.shape[1] != 1
    common = {
        "name": name, "encoding": "codebook" if qt.codebook is not None else "affine", "method": qt.method,
        "config": json.dumps(qt.config, sort_keys=True), "shape": list(qt.shape), "dtype": "float32",
        "bits": qt.bits, "group_size": qt.group_size, "scale_dtype": "nested" if nested else _dtype_name(qt.scale),
        "zero_dtype": _dtype_name(qt.zero), "zero_shared": shared,
        "codebook": None if qt.codebook is None else _raw(qt.codebook.float()),
    }  # fmt: skip
    for r0 in range(0, out, per):
        yield {
            **common,
            "row_start": r0,
            "rows": min(per, out - r0),
            "codes": pack_codes(qt.q[r0 : r0 + per].numpy(), qt.bits),
            "scale": None if nested else _raw(qt.scale[r0 : r0 + per]),
            "zero": _raw(qt.zero.reshape(-1)[:1] if shared else qt.zero[r0 : r0 + per]),
        }
    if nested:
        yield from _encode_quantized(name + NESTED_SCALE, qt.scale_q)


def to_table(entries: dict[str, QuantizedTensor | torch.Tensor]) -> pa.Table:
    """Pure: tensors and quantized tensors -> an Arrow table in the artifact layout."""
    rows = [row for name, item in entries.items() for row in encode_rows(name, item)]  # noqa: C416
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _tensor(data: bytes, dtype: str, shape: tuple[int, ...], what: str) -> torch.Tensor:
    if dtype not in _DTYPES:
        raise QcoreError(f"{what}: unknown dtype '{dtype}' in artifact")
    arr = np.frombuffer(data, dtype=np.dtype(dtype))
    if arr.size != int(np.prod(shape)):
        raise QcoreError(f"{what}: {arr.size} values stored, shape {shape} needs {int(np.prod(shape))}")
    return torch.from_numpy(arr.copy()).reshape(shape)


def from_table(table: pa.Table) -> dict[str, QuantizedTensor | torch.Tensor]:
    """Pure: an artifact table -> {name: QuantizedTensor or float16 tensor}, chunks joined in order."""
    missing = set(SCHEMA.names) - set(table.column_names)
    if missing:
        raise QcoreError(f"not a qcore artifact: columns {', '.join(sorted(missing))} are missing")
    chunks: dict[str, list[dict]] = {}
    for row in table.to_pylist():
        chunks.setdefault(row["name"], []).append(row)
    nested = {k.removesuffix(NESTED_SCALE): _decode(k, v, None) for k, v in chunks.items() if k.endswith(NESTED_SCALE)}
    out = {}
    for name, rows in chunks.items():
        if name.endswith(NESTED_SCALE):
            continue
        if rows[0]["scale_dtype"] == "nested" and name not in nested:
            raise QcoreError(f"{name}: its double-quantized scales ({name}{NESTED_SCALE}) are missing")
        out[name] = _decode(name, rows, nested.get(name))
    for name, item in list(out.items()):
        if isinstance(item, dict):  # a rowmix head: gather its parts
            parts = {b: out.pop(f"{name}{PART}{b}", None) for b in item["widths"]}
            if any(p is None for p in parts.values()):
                raise QcoreError(
                    f"{name}: rows of width {', '.join(str(b) for b, p in parts.items() if p is None)} are missing"
                )
            out[name] = MixedTensor(item["row_bits"], parts, item["shape"], item["method"], item["config"])
    return out


def _decode(name: str, rows: list[dict], scale_q: QuantizedTensor | None) -> QuantizedTensor | torch.Tensor:
    head = rows[0]
    shape = tuple(head["shape"])
    if head["encoding"] == "rowmix":
        row_bits = torch.from_numpy(np.frombuffer(head["codes"], dtype=np.uint8).copy())
        widths = sorted(int(b) for b in row_bits.unique())
        return {"row_bits": row_bits, "widths": widths, "shape": shape, "method": head["method"],
                "config": json.loads(head["config"])}  # fmt: skip
    if head["encoding"] == "fp16":
        data = b"".join(r["codes"] for r in rows)
        return _tensor(data, "float16", shape, name)
    out = shape[0]
    n = int(np.prod(shape[1:]))
    if scale_q is not None:
        G = scale_q.numel // out
        scale = dequantize(scale_q).reshape(out, G)  # (out, G)
    else:
        G = len(head["scale"]) // (rows[0]["rows"] * np.dtype(head["scale_dtype"]).itemsize)
    qs, scales, zeros = [], [], []
    for r in rows:
        qs.append(unpack_codes(r["codes"], head["bits"], r["rows"] * n).reshape(r["rows"], n))
        if scale_q is None:
            scales.append(_tensor(r["scale"], head["scale_dtype"], (r["rows"], G), name))
        zeros.append(r["zero"])
    q = torch.from_numpy(np.concatenate(qs)) if len(qs) > 1 else torch.from_numpy(qs[0])
    if q.shape[0] != out:
        raise QcoreError(f"{name}: chunks hold {q.shape[0]} rows, shape {shape} needs {out}")
    zshape = (1, 1) if head["zero_shared"] else (out, G)
    zero = _tensor(head["zero"] if head["zero_shared"] else b"".join(zeros), head["zero_dtype"], zshape, name)
    codebook = None
    if head["encoding"] == "codebook":
        codebook = _tensor(head["codebook"], "float32", (2 ** head["bits"],), name)
    config = json.loads(head["config"])
    if scale_q is None:
        scale = torch.cat(scales)
    return QuantizedTensor(
        q, scale, zero, head["bits"], head["group_size"], shape, head["method"], config, codebook, scale_q
    )


class ArtifactWriter:
    """Streams tensors into a Parquet artifact, one at a time; the file appears only when complete.

    `path=None` writes to memory (`.data` holds the bytes after close). A file is written to a temp
    name in the same folder and renamed over `path` on success, so a crash never leaves half a file.
    """

    def __init__(self, path: str | Path | None = None, codec: str = "none", count_only: bool = False):
        if codec not in CODECS:
            raise QcoreError(f"unknown codec '{codec}'; choose one of: {', '.join(CODECS)}")
        self.path = Path(path) if path is not None else None
        self.stats = ArtifactStats(codec=codec)
        self.data: bytes | None = None
        if self.path is None:
            self._sink = _CountingSink() if count_only else pa.BufferOutputStream()
            self._tmp = None
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            os.close(fd)
            self._tmp = Path(tmp)
            self._sink = str(self._tmp)
        self._writer = pq.ParquetWriter(
            self._sink, SCHEMA, compression=codec, use_dictionary=_STRING_COLUMNS,
            write_statistics=False, store_schema=False,
        )  # fmt: skip
        self._writer.add_key_value_metadata(FILE_METADATA)
        self._pending: list[dict] = []
        self._pending_bytes = 0

    def write(self, name: str, item: QuantizedTensor | torch.Tensor) -> None:
        """Append one tensor (quantized, or a plain tensor stored as float16)."""
        for row in encode_rows(name, item):
            codes = len(row["codes"])
            meta = len(row["scale"] or b"") + len(row["zero"] or b"") + len(row["codebook"] or b"")
            if row["encoding"] == "fp16":
                self.stats.passthrough_bytes += codes
            elif row["encoding"] == "rowmix" or row["name"].endswith(NESTED_SCALE):  # widths, scales: metadata
                self.stats.metadata_bytes += codes + meta
            else:
                self.stats.payload_bytes += codes
                self.stats.metadata_bytes += meta
            self._pending.append(row)
            self._pending_bytes += codes + meta
            if self._pending_bytes >= ROW_GROUP_BYTES:
                self._flush()

    def _flush(self) -> None:
        if self._pending:
            table = pa.Table.from_pylist(self._pending, schema=SCHEMA)
            self._writer.write_table(table, row_group_size=len(self._pending))
            self._pending, self._pending_bytes = [], 0
            del table
            pa.default_memory_pool().release_unused()  # hand freed buffers back: big models stream

    def close(self) -> ArtifactStats:
        """Finish the file, rename it into place, and measure its bytes."""
        self._flush()
        self._writer.close()
        if isinstance(self._sink, _CountingSink):
            self.stats.file_bytes = self._sink.count
            meta = self._writer.writer.metadata  # the footer just written
        elif self.path is None:
            self.data = self._sink.getvalue().to_pybytes()
            self.stats.file_bytes = len(self.data)
            meta = pq.read_metadata(io.BytesIO(self.data))
        else:
            os.replace(self._tmp, self.path)
            self.stats.file_bytes = self.path.stat().st_size
            meta = pq.read_metadata(self.path)
        self.stats.codec_gain_bytes = _codec_gain(meta)
        return self.stats

    def abort(self) -> None:
        """Drop a half-written artifact: the temp file goes, any earlier file at `path` stays."""
        try:
            self._writer.close()
        finally:
            if self._tmp is not None and self._tmp.exists():
                self._tmp.unlink()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()


class _CountingSink(io.RawIOBase):
    """A write-only sink that keeps no bytes, only their count (sizes of files too big to hold)."""

    def __init__(self):
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        n = memoryview(b).nbytes
        self.count += n
        return n

    def tell(self) -> int:
        return self.count


def _codec_gain(meta: pq.FileMetaData) -> int:
    gain = 0
    for i in range(meta.num_row_groups):
        rg = meta.row_group(i)
        for j in range(rg.num_columns):
            col = rg.column(j)
            gain += col.total_uncompressed_size - col.total_compressed_size
    return gain


def save(path: str | Path | None, entries: dict[str, QuantizedTensor | torch.Tensor], codec: str = "none"):
    """Write an artifact (to memory when path is None). Returns (stats, bytes or None)."""
    with ArtifactWriter(path, codec) as w:
        for name, item in entries.items():
            w.write(name, item)
    return w.stats, w.data


def load(source: str | Path | bytes) -> dict[str, QuantizedTensor | torch.Tensor]:
    """Read an artifact from a path or bytes."""
    try:
        pf = pq.ParquetFile(io.BytesIO(source) if isinstance(source, bytes) else source)
        table = pf.read()
    except (OSError, pa.ArrowException) as e:
        raise QcoreError(f"cannot read the artifact as Parquet: {e}") from None
    kv = pf.metadata.metadata or {}
    version = kv.get(b"qcore.format_version", b"").decode()
    if version != FORMAT_VERSION:
        raise QcoreError(f"not a qcore artifact of format {FORMAT_VERSION} (found format '{version or 'none'}')")
    return from_table(table)
