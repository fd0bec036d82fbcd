"""The Parquet artifact file: rows from table.py written in a stream, one tensor (or chunk) at a time, atomically.

The file appears only when complete (a temp file in the same folder, then a rename). `ArtifactStats` says where
its bytes go. The codec is a choice (none or zstd); payload figures are measured without it and the codec's gain
is reported on its own. Column layout, format version and packing order: see table.py.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pandas  # noqa: F401  pyarrow imports it on first use; load it with the module, not inside a run
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from ..errors import QcoreError
from ..methods.quant import MixedTensor, QuantizedTensor
from .artifact_check import check_footer, check_metadata, decoded_bytes
from .budget import check_budget
from .table import FILE_METADATA, FORMAT_VERSION, SCHEMA, SIDE, STRING_COLUMNS, encode_rows, from_table

CODECS = ("none", "zstd")
ROW_GROUP_BYTES = 32 << 20  # buffered bytes that trigger a row-group flush


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
            self._sink, SCHEMA, compression=codec, use_dictionary=STRING_COLUMNS,
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
            elif row["encoding"] == "rowmix" or row["name"].endswith(SIDE):  # widths, scales, signs: metadata
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


def count_bytes(entries: Mapping[str, QuantizedTensor | MixedTensor | torch.Tensor], codec: str = "none") -> int:
    """Bytes of the artifact `entries` would make, counted without keeping them."""
    with ArtifactWriter(None, codec, count_only=True) as w:
        for name, item in entries.items():
            w.write(name, item)
    return w.stats.file_bytes


def save(path: str | Path | None, entries: dict[str, QuantizedTensor | torch.Tensor], codec: str = "none"):
    """Write an artifact (to memory when path is None). Returns (stats, bytes or None)."""
    with ArtifactWriter(path, codec) as w:
        for name, item in entries.items():
            w.write(name, item)
    return w.stats, w.data


def load(source: str | Path | bytes | BinaryIO, label: str | None = None) -> dict[str, QuantizedTensor | torch.Tensor]:
    """Read an artifact from a path, an open binary file or bytes; `label` names it in messages.

    Nothing is decoded before the checks pass: the format, the packing and the bytes the file decodes to (against
    the memory budget) from its metadata and describing columns, then every row (artifact_check.py).
    """
    where = f"{label}: " if label else ""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    if not isinstance(source, str | Path):
        check_footer(source, label)
    try:
        pf = pq.ParquetFile(source)
        head = pf.read(columns=check_metadata(pf, label, FORMAT_VERSION, SCHEMA.names)).to_pylist()
        need = decoded_bytes(head)
    except (OSError, pa.ArrowException) as e:
        raise QcoreError(f"{where}cannot read the artifact as Parquet: {e}") from None
    except QcoreError as e:
        raise QcoreError(e.args[0] if str(e).startswith(where) else f"{where}{e}") from None
    check_budget(label or "artifact", need, "its tensors, decoded")
    try:
        return from_table(pf.read())
    except (OSError, pa.ArrowException) as e:
        raise QcoreError(f"{where}cannot read the artifact as Parquet: {e}") from None
    except QcoreError as e:
        raise QcoreError(f"{where}{e}") from None
    except (ValueError, TypeError, IndexError, KeyError, RuntimeError, ZeroDivisionError, OverflowError) as e:
        raise QcoreError(f"{where}a malformed entry the checks did not catch ({type(e).__name__})") from None
