"""Checks of an artifact before its data is decoded (the column layout is table.py's): the file's metadata, its
size once read against the memory budget, and every row's fields, so a malformed file is refused with what is
wrong instead of failing inside numpy or torch, and nothing unknown (a packing, an encoding, a dtype) is decoded
by guesswork.
"""

from __future__ import annotations

import json
import math
import re
import struct
from typing import BinaryIO

import pyarrow.parquet as pq

from ..errors import QcoreError
from ..methods.quant import num_groups
from .budget import check_budget
from .packing import BIT_ORDER, PACK_BITS, packed_nbytes

FIXED_ENCODINGS = ("affine", "codebook", "fp16", "rowmix", "e8p", "start", "signs")
TRELLIS = re.compile(r"trellis L=(\d{1,2}) k=(\d{1,2}) T=(\d{1,6})")
SCALE_DTYPES = {"float16": 2, "float32": 4}
ZERO_DTYPES = {"uint8": 1, "float16": 2, "float32": 4}
DATA_COLUMNS = ("codes", "scale", "zero", "codebook")  # the bulk; the other columns describe it
WORKING_BYTES = 5  # bytes per weight while decoding: its unpacked code and its float32 value
MAX_DIMS = 64
FOOTER_OBJECT_BYTES = 16  # bytes of parsed metadata per byte of a Parquet footer, generously


def check_footer(f: BinaryIO, label: str | None) -> None:
    """The Parquet footer's length (the last 8 bytes: length, b"PAR1") against the budget, before it is parsed."""
    f.seek(0, 2)
    size = f.tell()
    if size >= 12:
        f.seek(size - 8)
        tail = f.read(8)
        if tail[4:] == b"PAR1":
            footer = min(struct.unpack("<I", tail[:4])[0], size)
            check_budget(label or "artifact", footer * FOOTER_OBJECT_BYTES, f"parsing its {footer:,}-byte metadata")
    f.seek(0)


def check_metadata(pf: pq.ParquetFile, label: str | None, version: str, columns: list[str]) -> list[str]:
    """Format version, packing and `columns` checked; the bytes reading the file takes checked against the budget.
    Returns the columns that describe the data (read first, on their own)."""
    where = f"{label}: " if label else ""
    kv = pf.metadata.metadata or {}
    found = kv.get(b"qcore.format_version", b"").decode("utf-8", "replace")
    if found != version:
        raise QcoreError(f"{where}not a qcore artifact of format {version} (found format '{found[:20] or 'none'}')")
    packing = kv.get(b"qcore.packing", b"").decode("utf-8", "replace")
    if packing != BIT_ORDER:
        raise QcoreError(f"{where}unknown packing '{packing[:60]}'; this reader knows only '{BIT_ORDER}'")
    missing = set(columns) - set(pf.schema_arrow.names)
    if missing:
        raise QcoreError(f"{where}not a qcore artifact: columns {', '.join(sorted(missing))} are missing")
    meta = pf.metadata
    held = sum(meta.row_group(i).column(j).total_uncompressed_size
               for i in range(meta.num_row_groups) for j in range(meta.num_columns))  # fmt: skip
    check_budget(label or "artifact", 2 * held, "its columns once decompressed, and their copies")
    return [n for n in columns if n not in DATA_COLUMNS]


def decoded_bytes(rows: list[dict]) -> int:
    """Bytes the artifact's tensors take while decoded: WORKING_BYTES per weight of every named tensor."""
    shapes = {}
    for r in rows:
        check_row_head(r)
        if "::" not in r["name"]:  # side entries and row-mix parts belong to a named tensor
            shapes[r["name"]] = r["shape"]
    return sum(WORKING_BYTES * math.prod(s) for s in shapes.values())


def check_row_head(r: dict) -> None:
    """The describing fields of one row: name, encoding, config, shape, bits, group_size, chunk position."""
    name = r["name"]
    if not isinstance(name, str) or not name:
        raise QcoreError("an entry has no name")
    where = f"{name[:120]}: "
    enc = r["encoding"]
    if not isinstance(enc, str) or not (enc in FIXED_ENCODINGS or TRELLIS.fullmatch(enc)):
        raise QcoreError(f"{where}unknown encoding '{str(enc)[:40]}'; refused rather than guessed")
    try:
        config = json.loads(r["config"]) if isinstance(r["config"], str) else None
    except (json.JSONDecodeError, RecursionError):
        config = None
    if not isinstance(config, dict):
        raise QcoreError(f"{where}its config is not valid JSON (a JSON object)")
    shape = r["shape"]
    if not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(type(d) is int and d >= 0 for d in shape):
        raise QcoreError(f"{where}invalid shape {str(shape)[:80]}")
    if math.prod(d for d in shape if d) > 1 << 60:
        raise QcoreError(f"{where}impossible shape {shape}: its dims multiply past 2^60")
    for key in ("bits", "group_size", "row_start", "rows"):
        if type(r[key]) is not int:
            raise QcoreError(f"{where}{key} is missing or not a whole number")
        if r[key] < 0:
            raise QcoreError(f"{where}{key} {r[key]} is negative")
    if enc not in ("fp16", "rowmix") and r["bits"] not in PACK_BITS:
        raise QcoreError(f"{where}{r['bits']}-bit codes; the packing holds 1 to 16 bits")


def check_row(r: dict) -> None:
    """One row, data included: the head's checks, codes present, scales and zeros sized as group_size says."""
    check_row_head(r)
    where = f"{r['name'][:120]}: "
    if not isinstance(r["codes"], bytes):
        raise QcoreError(f"{where}its codes are missing (null)")
    enc = r["encoding"]
    if enc in ("affine", "codebook"):
        _check_affine(r, where)
    elif enc == "e8p" or enc.startswith("trellis"):
        if r["scale_dtype"] not in SCALE_DTYPES or not isinstance(r["scale"], bytes):
            raise QcoreError(f"{where}unknown scale dtype '{str(r['scale_dtype'])[:20]}', or no scales")
        if r["rows"] == 0 or len(r["scale"]) % (r["rows"] * SCALE_DTYPES[r["scale_dtype"]]):
            raise QcoreError(f"{where}its scales do not fill its {r['rows']} rows")
    elif enc == "signs" and (len(r["shape"]) != 2 or 0 in r["shape"]):
        raise QcoreError(f"{where}a rotation needs a shape [m, n] of two positive sizes")


def _check_affine(r: dict, where: str) -> None:
    shape, rows, gs = r["shape"], r["rows"], r["group_size"]
    if len(shape) < 2:
        raise QcoreError(f"{where}a quantized tensor needs two or more dims, the shape is {shape}")
    n = math.prod(shape[1:])
    G = num_groups(n, gs)
    if rows < 1:
        raise QcoreError(f"{where}a chunk of {rows} rows")
    if len(r["codes"]) != packed_nbytes(rows * n, r["bits"]):
        raise QcoreError(
            f"{where}codes of {len(r['codes']):,} bytes do not fill {rows} rows of {n} {r['bits']}-bit codes"
        )
    if r["scale_dtype"] == "nested":
        if r["scale"] is not None:
            raise QcoreError(f"{where}scales stored inline although their dtype says nested")
    elif r["scale_dtype"] not in SCALE_DTYPES:
        raise QcoreError(f"{where}unknown scale dtype '{str(r['scale_dtype'])[:20]}'")
    elif not isinstance(r["scale"], bytes) or len(r["scale"]) != rows * G * SCALE_DTYPES[r["scale_dtype"]]:
        held = len(r["scale"] or b"") // SCALE_DTYPES[r["scale_dtype"]] // max(rows, 1)
        raise QcoreError(
            f"{where}group_size {gs} means {G} scales per row of {n} inputs, the file holds {held} "
            "(a mismatched group_size)"
        )
    if r["zero_dtype"] not in ZERO_DTYPES or not isinstance(r["zero"], bytes):
        raise QcoreError(f"{where}unknown zero dtype '{str(r['zero_dtype'])[:20]}', or no zeros")
    zeros = 1 if r["zero_shared"] else rows * G
    if len(r["zero"]) != zeros * ZERO_DTYPES[r["zero_dtype"]]:
        raise QcoreError(f"{where}zeros of {len(r['zero'])} bytes, group_size {gs} needs {zeros} values")
    if r["encoding"] == "codebook" and len(r["codebook"] or b"") != 4 * 2 ** r["bits"]:
        raise QcoreError(f"{where}its code book does not hold 2^{r['bits']} float32 values")
