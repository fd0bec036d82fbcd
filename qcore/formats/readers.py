"""Weight files in: safetensors (single or sharded), PyTorch, NumPy .npz and our own Parquet artifacts.

Each reader is pure: a path in, a Model of float32 tensors out (read lazily, one tensor at a time),
or a QcoreError whose message says what is wrong with the file. Headers are validated before any
data is read; pickle code never runs (torch.load with weights_only=True, np.load without pickle).
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import struct
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from ..errors import QcoreError
from ..methods.quant import Quantized
from ..models.model import LazyTensors, Model
from .storage import load

MAX_HEADER = 100 * 1000 * 1000  # bytes of safetensors JSON header we accept
MAX_NPZ_RATIO = 200  # uncompressed / compressed bytes beyond which an .npz member is a bomb
MAX_NPZ_BYTES = 64 << 30  # total uncompressed bytes of an .npz
WEIGHTS_DIR_ENV = "QCORE_WEIGHTS_DIR"  # server-side folder the app may open (off when unset)
SUFFIXES = (".safetensors", ".index.json", ".pt", ".pth", ".bin", ".npz", ".parquet")

ST_DTYPES = {
    "F64": (torch.float64, 8), "F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8), "I32": (torch.int32, 4), "I16": (torch.int16, 2), "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1), "BOOL": (torch.bool, 1), "F8_E4M3": (None, 1), "F8_E5M2": (None, 1),
    "U16": (None, 2), "U32": (None, 4), "U64": (None, 8),
}  # fmt: skip
FLOAT_CODES = ("F64", "F32", "F16", "BF16")


EMBEDDING_NAME = re.compile(
    r"(^|[._])(embed\w*|wte|wpe|tok_embeddings|word_embeddings|position_embeddings|token_type_embeddings)([._]|$)"
)
HEAD_NAME = re.compile(r"(^|\.)(lm_head|output|classifier|score)\.weight$")


def roles(names) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(embeddings, heads) among tensor names, by the naming conventions of common checkpoints."""
    names = list(names)
    return tuple(n for n in names if EMBEDDING_NAME.search(n)), tuple(n for n in names if HEAD_NAME.search(n))


# ---- safetensors -------------------------------------------------------------------------------


def read_safetensors_header(path: Path) -> tuple[dict, int]:
    """Validate a safetensors header without reading tensor data. Returns ({name: entry}, data start)."""
    size = path.stat().st_size
    if size < 8:
        raise QcoreError(f"{path.name}: {size} bytes is too short for a safetensors file (empty or truncated)")
    with open(path, "rb") as f:
        head = f.read(8)
        if all(32 <= c < 127 or c in (9, 10, 13) for c in head):
            raise QcoreError(f"{path.name}: starts with text ({head.decode()!r}), not a safetensors header length")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER:
            raise QcoreError(f"{path.name}: header of {n:,} bytes exceeds the {MAX_HEADER:,}-byte limit")
        if 8 + n > size:
            raise QcoreError(
                f"{path.name}: header length {n:,} is larger than the file ({size:,} bytes): not a safetensors file, or truncated"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise QcoreError(f"{path.name}: the header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise QcoreError(f"{path.name}: the JSON header is not an object")
    header.pop("__metadata__", None)
    data_len = size - 8 - n
    spans = []
    for name, e in header.items():
        if not isinstance(e, dict) or not {"dtype", "shape", "data_offsets"} <= set(e):
            raise QcoreError(f"{path.name}: entry '{name}' lacks dtype, shape or data_offsets")
        if e["dtype"] not in ST_DTYPES:
            raise QcoreError(f"{path.name}: tensor '{name}' has unknown dtype '{e['dtype']}'")
        shape, offs = e["shape"], e["data_offsets"]
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise QcoreError(f"{path.name}: tensor '{name}' has an invalid shape {shape!r}")
        if not (isinstance(offs, list) and len(offs) == 2 and all(isinstance(o, int) and o >= 0 for o in offs)):
            raise QcoreError(f"{path.name}: tensor '{name}' has invalid data_offsets {offs!r}")
        nbytes = math.prod(shape) * ST_DTYPES[e["dtype"]][1]
        if nbytes > data_len or nbytes >= 2**63:
            raise QcoreError(f"{path.name}: tensor '{name}' shape {shape} overflows the file ({nbytes:,} bytes)")
        if offs[1] - offs[0] != nbytes:
            raise QcoreError(
                f"{path.name}: tensor '{name}' spans {offs[1] - offs[0]:,} bytes, its shape needs {nbytes:,}"
            )
        spans.append((offs[0], offs[1], name))
    end = 0
    for begin, stop, name in sorted(spans):
        if begin < end:
            raise QcoreError(f"{path.name}: tensor '{name}' overlaps the tensor before it")
        if begin > end:
            raise QcoreError(f"{path.name}: a gap of {begin - end:,} bytes precedes tensor '{name}'")
        end = stop
    if end < data_len:
        raise QcoreError(f"{path.name}: {data_len - end:,} trailing bytes after the last tensor")
    if end > data_len:
        raise QcoreError(f"{path.name}: truncated: tensors need {end:,} data bytes, the file has {data_len:,}")
    return header, 8 + n


def _safetensors_model(files: list[Path], name: str) -> Model:

    shapes, where, skipped = {}, {}, []
    for p in files:
        header, _ = read_safetensors_header(p)
        for t, e in header.items():
            if e["dtype"] in FLOAT_CODES:
                shapes[t], where[t] = tuple(e["shape"]), p
            else:
                skipped.append(f"{t} ({e['dtype']})")
    if not shapes:
        raise QcoreError(f"{name}: no float tensors to quantize" + (f" (only {', '.join(skipped)})" if skipped else ""))

    def load(t: str) -> torch.Tensor:
        try:
            with safe_open(str(where[t]), framework="pt") as f:
                return f.get_tensor(t).float()
        except Exception as e:  # the library's own error types vary by version
            raise QcoreError(f"{where[t].name}: cannot read tensor '{t}' ({e})") from None

    desc = f"{len(shapes)} float tensors from {name}" + (f"; skipped non-float {', '.join(skipped)}" if skipped else "")
    emb, head = roles(shapes)
    return Model(name, LazyTensors(shapes, load), desc, head=head, embeddings=emb, skipped=tuple(skipped))


def _shards(index: Path) -> list[Path]:
    try:
        doc = json.loads(index.read_text(encoding="utf-8"))
        files = sorted(set(doc["weight_map"].values()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise QcoreError(f"{index.name}: not a safetensors index (needs a weight_map): {e}") from None
    out = []
    for f in files:
        if not isinstance(f, str) or Path(f).name != f:
            raise QcoreError(f"{index.name}: shard name {f!r} must be a plain file name in the same folder")
        p = index.parent / f
        if not p.is_file():
            raise QcoreError(f"{index.name}: shard {f} is missing")
        out.append(p)
    return out


# ---- PyTorch, NumPy, our artifacts -------------------------------------------------------------


def _flatten(obj, prefix: str, out: dict[str, torch.Tensor]) -> None:
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    # other values (step counts, strings) carry no weights


def _torch_model(p: Path) -> Model:
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise QcoreError(
            f"{p.name}: refused: loading it would run arbitrary pickle code ({str(e).splitlines()[0][:160]}); "
            "save a plain state_dict, or convert it to safetensors"
        ) from None
    except Exception as e:
        raise QcoreError(f"{p.name}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})"[:300]) from None
    found: dict[str, torch.Tensor] = {}
    _flatten(obj, "", found)
    return _eager_model(p.name, found)


def _npz_model(p: Path) -> Model:
    try:
        with zipfile.ZipFile(p) as z:
            total = 0
            for info in z.infolist():
                total += info.file_size
                if info.file_size > MAX_NPZ_RATIO * max(info.compress_size, 1) and info.file_size > 1 << 20:
                    raise QcoreError(
                        f"{p.name}: member {info.filename} expands {info.file_size / max(info.compress_size, 1):,.0f}x "
                        "(a zip bomb); refused"
                    )
            if total > MAX_NPZ_BYTES:
                raise QcoreError(f"{p.name}: members expand to {total:,} bytes, over the {MAX_NPZ_BYTES:,}-byte limit")
    except zipfile.BadZipFile:
        raise QcoreError(f"{p.name}: not a valid .npz (zip) file") from None
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: torch.from_numpy(np.ascontiguousarray(z[k])) for k in z.files}
    except ValueError as e:
        raise QcoreError(f"{p.name}: refused: {e} (object arrays need pickle, which is never allowed)") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise QcoreError(f"{p.name}: not a readable .npz ({e})") from None
    return _eager_model(p.name, arrays)


def _eager_model(name: str, found: dict[str, torch.Tensor]) -> Model:
    tensors = {k: v.float() for k, v in found.items() if v.is_floating_point()}
    skipped = tuple(
        f"{k} ({str(v.dtype).removeprefix('torch.')})" for k, v in found.items() if not v.is_floating_point()
    )
    if not tensors:
        raise QcoreError(f"{name}: no float tensors to quantize")
    desc = f"{len(tensors)} float tensors from {name}" + (
        f"; skipped non-float {', '.join(skipped)}" if skipped else ""
    )
    return Model(name, tensors, desc, skipped=skipped)


def _parquet_model(p: Path) -> Model:
    items = load(p)
    tensors = {k: v.dequantize() if isinstance(v, Quantized) else v.float() for k, v in items.items()}
    methods = sorted({v.method for v in items.values() if isinstance(v, Quantized)})
    desc = f"{len(tensors)} tensors dequantized from a qcore artifact ({', '.join(methods) or 'fp16'})"
    emb, head = roles(tensors)
    return Model(p.name, tensors, desc, head=head, embeddings=emb)


# ---- entry points ------------------------------------------------------------------------------


def read_weights(path: str | Path, max_bytes: int | None = None, name: str | None = None) -> Model:
    """Open a weight file (or a folder of safetensors shards) as a Model. `name` overrides the label."""
    p = Path(path)
    if not p.exists():
        raise QcoreError(f"no such file: {p}")
    if p.is_dir():
        files = sorted(p.glob("*.safetensors"))
        index = sorted(p.glob("*.safetensors.index.json"))
        if index:
            files = _shards(index[0])
        if not files:
            raise QcoreError(f"{p.name}: the folder holds no .safetensors files")
        return _safetensors_model(files, name or p.name)
    size = p.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise QcoreError(f"{p.name}: {size / 2**20:,.1f} MiB is over the {max_bytes / 2**20:,.0f} MiB limit")
    if size == 0:
        raise QcoreError(f"{p.name}: the file is empty")
    label = name or p.name
    suffix = p.name.lower()
    if suffix.endswith(".index.json"):
        return _safetensors_model(_shards(p), label)
    if suffix.endswith(".safetensors"):
        return _safetensors_model([p], label)
    if suffix.endswith((".pt", ".pth", ".bin")):
        return _relabel(_torch_model(p), label)
    if suffix.endswith(".npz"):
        return _relabel(_npz_model(p), label)
    if suffix.endswith(".parquet"):
        return _relabel(_parquet_model(p), label)
    raise QcoreError(f"{p.name}: unsupported file type; open one of {', '.join(SUFFIXES)}")


def _relabel(model: Model, name: str) -> Model:
    return model if model.name == name else replace(model, name=name)


def server_path(relative: str) -> Path:
    """A file inside the folder named by QCORE_WEIGHTS_DIR; refuses anything that escapes it."""
    root = os.environ.get(WEIGHTS_DIR_ENV)
    if not root:
        raise QcoreError(f"opening server-side files is off; set {WEIGHTS_DIR_ENV} to a folder to enable it")
    base = Path(root).resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base) or target == base:
        raise QcoreError(f"'{relative}' is outside the server's weights folder")
    if not target.exists():
        raise QcoreError(f"no such file in the server's weights folder: {relative}")
    return target


def server_files() -> list[str]:
    """Weight files under QCORE_WEIGHTS_DIR (relative names), or [] when the folder is off."""
    root = os.environ.get(WEIGHTS_DIR_ENV)
    if not root or not Path(root).is_dir():
        return []
    base = Path(root).resolve()
    return sorted(
        str(p.relative_to(base)) for p in base.rglob("*") if p.is_file() and p.name.lower().endswith(SUFFIXES)
    )
