"""safetensors files, single or sharded: each header is parsed and validated once, then every tensor is read lazily
by the offsets it gives (one positioned read per tensor, no parsing per tensor).

Layout: 8 bytes little-endian header length n, n bytes of JSON {name: {dtype, shape, data_offsets}} (plus an
optional __metadata__), then the tensors' bytes, little-endian, packed without gaps in offset order.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import QcoreError
from ..models.model import LazyTensors, Model
from .budget import check_budget, memory_budget
from .common import check_shape, confine, roles, to_float32

MAX_HEADER = 100 * 1000 * 1000  # bytes of JSON header we accept (the safetensors library's own limit)
HEADER_OBJECT_BYTES = 24  # Python bytes per byte of JSON, at worst (`[[],[],...]` measures 17)
ITEMSIZE = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
    "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8,
}  # fmt: skip
FLOAT_CODES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2"}  # what each float dtype decodes from


class DuplicateKey(ValueError):
    """A JSON object names the same key twice (json.loads would keep the last silently)."""


def unique_object(pairs: list[tuple[str, object]]) -> dict:
    """object_pairs_hook for json.loads that refuses a repeated key."""
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise DuplicateKey(k)
        out[k] = v
    return out


def parse_json(raw: bytes, label: str, what: str) -> object:
    """JSON text -> value, refusing repeated keys and nesting deeper than Python can parse."""
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=unique_object)
    except UnicodeDecodeError:
        raise QcoreError(f"{label}: the {what} is not UTF-8 text") from None
    except DuplicateKey as e:
        raise QcoreError(f"{label}: the {what} names '{str(e)[:80]}' twice; refused (which one is meant?)") from None
    except RecursionError:
        raise QcoreError(f"{label}: the {what} nests too deeply to be parsed; refused") from None
    except json.JSONDecodeError as e:
        raise QcoreError(f"{label}: the {what} is not valid JSON ({e.msg} at byte {e.pos})") from None


def _header_bytes(path: Path, label: str) -> tuple[bytes, int]:
    """The raw JSON header and the file's size, after the length checks."""
    size = path.stat().st_size
    if size < 8:
        raise QcoreError(f"{label}: {size} bytes is too short for a safetensors file (empty or truncated)")
    with open(path, "rb") as f:
        head = f.read(8)
        if all(32 <= c < 127 or c in (9, 10, 13) for c in head):
            raise QcoreError(f"{label}: starts with text, not a safetensors header length (a text file renamed?)")
        (n,) = struct.unpack("<Q", head)
        if n == 0:
            raise QcoreError(f"{label}: the header length is 0; a safetensors header is a JSON object")
        if n > MAX_HEADER:
            raise QcoreError(f"{label}: header of {n:,} bytes exceeds the {MAX_HEADER:,}-byte limit")
        if 8 + n > size:
            raise QcoreError(
                f"{label}: header length {n:,} is larger than the file ({size:,} bytes): not a safetensors file, "
                "or truncated"
            )
        check_budget(label, n * HEADER_OBJECT_BYTES, f"parsing its {n:,}-byte JSON header")
        return f.read(n), size


def read_safetensors_header(path: Path, name: str | None = None) -> tuple[dict, int]:
    """Validate a safetensors header without reading tensor data. Returns ({name: entry}, data start).

    `name` labels messages (the user's file name where `path` is a temp file)."""
    label = name or path.name
    raw, size = _header_bytes(path, label)
    header = parse_json(raw, label, "header")
    if not isinstance(header, dict):
        raise QcoreError(f"{label}: the JSON header is not an object")
    header.pop("__metadata__", None)
    data_len = size - 8 - len(raw)
    spans = []
    for t, e in header.items():
        spans.append((*_check_entry(label, t, e, data_len), t))
    _check_spans(label, spans, data_len)
    return header, 8 + len(raw)


def _check_entry(label: str, t: str, e, data_len: int) -> tuple[int, int]:
    if not isinstance(e, dict) or not {"dtype", "shape", "data_offsets"} <= set(e):
        raise QcoreError(f"{label}: entry '{t}' lacks dtype, shape or data_offsets")
    if not isinstance(e["dtype"], str) or e["dtype"] not in ITEMSIZE:
        raise QcoreError(f"{label}: tensor '{t}' has unknown dtype '{str(e['dtype'])[:40]}'")
    shape, offs = check_shape(label, t, e["shape"]), e["data_offsets"]
    if not (isinstance(offs, list) and len(offs) == 2 and all(type(o) is int and o >= 0 for o in offs)):
        raise QcoreError(f"{label}: tensor '{t}' has invalid data_offsets {str(offs)[:80]}")
    nbytes = math.prod(shape) * ITEMSIZE[e["dtype"]]
    if nbytes > data_len:
        raise QcoreError(
            f"{label}: truncated or corrupt: tensor '{t}' (shape {list(shape)}) needs {nbytes:,} bytes, and the file "
            f"holds only {data_len:,} bytes of tensor data"
        )
    if offs[1] - offs[0] != nbytes:
        raise QcoreError(f"{label}: tensor '{t}' spans {offs[1] - offs[0]:,} bytes, its shape needs {nbytes:,}")
    return offs[0], offs[1]


def _check_spans(label: str, spans: list[tuple[int, int, str]], data_len: int) -> None:
    end = 0
    for begin, stop, t in sorted(spans):
        if begin < end:
            raise QcoreError(f"{label}: tensor '{t}' overlaps the tensor before it")
        if begin > end:
            raise QcoreError(f"{label}: a gap of {begin - end:,} bytes precedes tensor '{t}'")
        end = stop
    if end < data_len:
        raise QcoreError(f"{label}: {data_len - end:,} trailing bytes after the last tensor")
    if end > data_len:
        raise QcoreError(f"{label}: truncated: tensors need {end:,} data bytes, the file has {data_len:,}")


@dataclass(frozen=True)
class Span:
    """Where one tensor's bytes lie: the shard's real path and size, the absolute offset, dtype code, shape."""

    path: Path
    file_size: int
    begin: int
    nbytes: int
    code: str
    shape: tuple[int, ...]


def safetensors_model(files: list[Path], label: str, root: Path | None = None) -> Model:
    """A lazy Model over safetensors shards (each header parsed once); `root` confines every shard's real path."""
    spans: dict[str, Span] = {}
    skipped = []
    for p in files:
        real = confine(p, root, label)
        header, start = read_safetensors_header(real, label if len(files) == 1 else f"{label} ({p.name})")
        size = real.stat().st_size
        for t, e in header.items():
            if t in spans:
                raise QcoreError(f"{label}: tensor '{t}' appears in both {spans[t].path.name} and {p.name}")
            if e["dtype"] not in FLOAT_CODES:
                skipped.append(f"{t} ({e['dtype']})")
                continue
            begin, stop = e["data_offsets"]
            spans[t] = Span(real, size, start + begin, stop - begin, e["dtype"], tuple(e["shape"]))
    if not spans:
        raise QcoreError(
            f"{label}: no float tensors to quantize" + (f" (only {', '.join(skipped)})" if skipped else "")
        )
    largest = max(spans, key=lambda t: spans[t].nbytes + 4 * math.prod(spans[t].shape))
    s = spans[largest]
    check_budget(label, s.nbytes + 4 * math.prod(s.shape), f"its largest tensor '{largest}', read one at a time")
    budget = memory_budget()

    def load(t: str) -> torch.Tensor:
        return read_span(spans[t], t, label, budget)

    desc = f"{len(spans)} float tensors from {label}" + (f"; skipped non-float {', '.join(skipped)}" if skipped else "")
    emb, head = roles(spans)
    shapes = {t: s.shape for t, s in spans.items()}
    return Model(label, LazyTensors(shapes, load), desc, head=head, embeddings=emb, skipped=tuple(skipped))


def read_span(s: Span, t: str, label: str, budget: int) -> torch.Tensor:
    """One tensor's bytes, read at its offset and decoded to float32."""
    check_budget(label, s.nbytes + 4 * math.prod(s.shape), f"tensor '{t}'", budget)
    buf = bytearray(s.nbytes)
    try:
        fd = os.open(s.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with open(fd, "rb", buffering=0) as f:
            if os.fstat(f.fileno()).st_size != s.file_size:
                raise QcoreError(f"{label}: the file changed on disk since it was opened; open it again")
            f.seek(s.begin)
            view, got = memoryview(buf), 0
            while got < s.nbytes and (n := f.readinto(view[got:])):
                got += n
    except OSError as e:
        raise QcoreError(f"{label}: cannot read tensor '{t}' ({e.strerror or type(e).__name__})") from None
    if got != s.nbytes:
        raise QcoreError(f"{label}: tensor '{t}' is cut short: the file changed on disk since it was opened")
    return torch.from_numpy(decode_floats(buf, s.code, label, t)).reshape(s.shape)


def decode_floats(buf: bytearray, code: str, label: str, t: str) -> np.ndarray:
    """Little-endian F64/F32/F16/BF16 bytes -> a flat float32 array (bfloat16 is float32's top half)."""
    a = np.frombuffer(buf, FLOAT_CODES[code])
    if code == "BF16":
        return (a.astype(np.uint32) << 16).view(np.float32)
    return to_float32(a, label, t)
