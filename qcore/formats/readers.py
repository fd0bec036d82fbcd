"""Weight files in: safetensors (single or sharded), PyTorch, NumPy .npz and our own Parquet artifacts.

Each reader is pure: a path in, a Model of float32 tensors out (safetensors read lazily, one tensor at a time),
or a QcoreError whose message names the file by its label (the user's own file name, never a temp name), says
what is wrong, and never quotes the file's bytes. Headers are validated, and what the file decodes to is checked
against the memory budget (budget.py), before any data is read; pickle code never runs. A file opened through
the server's weights folder stays inside it: every path, each shard an index names and each file of a folder,
is resolved and checked against the folder.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import weakref
from pathlib import Path

from ..errors import QcoreError
from ..methods.quant import Quantized
from ..models.model import Model
from .budget import check_budget
from .common import clean_message, confine, roles, tensor_to_float32
from .hf_folder import hf_folder_model, is_hf_folder
from .model_folder import unpack_zip
from .npz_file import npz_model
from .safetensors_file import parse_json, read_safetensors_header, safetensors_model
from .storage import load
from .torch_file import torch_model

__all__ = [
    "read_safetensors_header", "read_weights", "read_server_weights", "roles", "server_files", "server_path",
    "server_stamp",
]  # fmt: skip

WEIGHTS_DIR_ENV = "QCORE_WEIGHTS_DIR"  # server-side folder the app may open (off when unset)
SUFFIXES = (".safetensors", ".index.json", ".pt", ".pth", ".bin", ".npz", ".parquet", ".zip")
INDEX_OBJECT_BYTES = 24  # Python bytes per byte of a shard index's JSON, at worst


def read_weights(
    path: str | Path, max_bytes: int | None = None, name: str | None = None, root: Path | None = None
) -> Model:
    """Open a weight file (or a folder of safetensors shards) as a Model.

    `name` labels the model and every message (the user's file name where `path` is a temp file); with `root`,
    every file opened must resolve inside that folder.
    """
    if "\0" in str(path):
        label = name or Path(str(path).replace("\0", "\\0")).name
        raise QcoreError(f"{label}: a file name cannot contain a NUL byte")
    p = Path(path)
    label = name or p.name
    try:
        return _read(p, label, max_bytes, root)
    except QcoreError as e:  # a label given: the path it stands for (a temp file) never shows
        raise QcoreError(clean_message(str(e), p if name else None, label)) from None
    except RecursionError:
        raise QcoreError(f"{label}: nests too deeply to be read; refused") from None
    except MemoryError:
        raise QcoreError(f"{label}: ran out of memory while reading it") from None


def _read(p: Path, label: str, max_bytes: int | None, root: Path | None) -> Model:
    if root is not None:
        p = confine(p, root, label)
    if not p.exists():
        raise QcoreError(f"no such file: {p}")
    if p.is_dir():
        files = _folder_files(p, label, root)
        if is_hf_folder(p):  # a Hugging Face model folder: its code runs through transformers
            return hf_folder_model(p, files, label, root)
        return safetensors_model(files, label, root)
    size = p.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise QcoreError(f"{label}: {size / 2**20:,.1f} MiB is over the {max_bytes / 2**20:,.0f} MiB limit")
    if size == 0:
        raise QcoreError(f"{label}: the file is empty")
    suffix = p.name.lower()
    if suffix.endswith(".index.json"):
        return safetensors_model(_shards(p, label, root), label, root)
    if suffix.endswith(".safetensors"):
        return safetensors_model([p], label, root)
    if suffix.endswith((".pt", ".pth", ".bin")):
        return torch_model(p, label)
    if suffix.endswith(".npz"):
        return npz_model(p, label)
    if suffix.endswith(".parquet"):
        return _parquet_model(p, label)
    if suffix.endswith(".zip"):
        return _zip_model(p, label)
    raise QcoreError(f"{label}: unsupported file type; open one of {', '.join(SUFFIXES)}")


def _zip_model(p: Path, label: str) -> Model:
    """A zipped model folder, unpacked (checked as model_folder.unpack_zip checks it) into a temp folder that lives
    as long as the model, whose safetensors are read lazily from it."""
    temp = Path(tempfile.mkdtemp(prefix="qcore-zip-"))
    try:
        folder, _ = unpack_zip(p, temp / "model", label)
        model = hf_folder_model(folder, _folder_files(folder, label, None), label, None)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    weakref.finalize(model, shutil.rmtree, temp, ignore_errors=True)
    atexit.register(shutil.rmtree, temp, ignore_errors=True)
    return model


def _folder_files(folder: Path, label: str, root: Path | None) -> list[Path]:
    index = sorted(folder.glob("*.safetensors.index.json"))
    files = _shards(index[0], label, root) if index else sorted(folder.glob("*.safetensors"))
    if not files:
        raise QcoreError(f"{label}: the folder holds no .safetensors files")
    return files


def _shards(index: Path, label: str, root: Path | None) -> list[Path]:
    """The shard files a safetensors index names: plain names in its own folder, each one existing."""
    real = confine(index, root, label)
    check_budget(label, real.stat().st_size * INDEX_OBJECT_BYTES, "parsing its shard index")
    try:
        raw = real.read_bytes()
    except OSError as e:
        raise QcoreError(f"{label}: cannot read the index ({e.strerror})") from None
    doc = parse_json(raw, label, "index")
    weight_map = doc.get("weight_map") if isinstance(doc, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(f, str) for f in weight_map.values()):
        raise QcoreError(f"{label}: not a safetensors index (needs a weight_map of tensor names to shard files)")
    out = []
    for f in sorted(set(weight_map.values())):
        if Path(f).name != f or f in (".", "..") or "\0" in f:
            raise QcoreError(f"{label}: shard name {f[:80]!r} must be a plain file name in the same folder")
        p = index.parent / f
        if not p.is_file():
            raise QcoreError(f"{label}: shard {f} is missing")
        out.append(confine(p, root, label))
    return out


def _parquet_model(p: Path, label: str) -> Model:
    with open(p, "rb") as f:  # a file object: pyarrow's messages then carry no path
        items = load(f, label)
    tensors = {}
    for k, v in items.items():
        try:
            tensors[k] = v.dequantize() if isinstance(v, Quantized) else tensor_to_float32(v, label, k)
        except QcoreError as e:
            raise QcoreError(f"{label}: {k}: {e}") from None
        except (ValueError, RuntimeError, IndexError, TypeError) as e:
            raise QcoreError(f"{label}: {k}: its entries do not fit together ({type(e).__name__})") from None
    if not tensors:
        raise QcoreError(f"{label}: the artifact holds no tensors")
    methods = sorted({v.method for v in items.values() if isinstance(v, Quantized)})
    desc = f"{len(tensors)} tensors dequantized from a qcore artifact ({', '.join(methods) or 'fp16'})"
    emb, head = roles(tensors)
    return Model(label, tensors, desc, head=head, embeddings=emb)


# ---- the server's weights folder ---------------------------------------------------------------


def server_root() -> Path:
    """The resolved QCORE_WEIGHTS_DIR; QcoreError when the folder is off."""
    root = os.environ.get(WEIGHTS_DIR_ENV)
    if not root:
        raise QcoreError(f"opening server-side files is off; set {WEIGHTS_DIR_ENV} to a folder to enable it")
    return Path(root).resolve()


def server_path(relative: str) -> Path:
    """A file inside the folder named by QCORE_WEIGHTS_DIR; refuses anything that escapes it."""
    base = server_root()
    if "\0" in relative:
        shown = relative.replace("\0", "\\0")
        raise QcoreError(f"{shown}: a file name cannot contain a NUL byte")
    target = (base / relative).resolve()
    if not target.is_relative_to(base) or target == base:
        raise QcoreError(f"'{relative}' is outside the server's weights folder")
    if not target.exists():
        raise QcoreError(f"no such file in the server's weights folder: {relative}")
    return target


def read_server_weights(relative: str, max_bytes: int | None = None) -> Model:
    """A model from the server's weights folder, labelled by its relative name; nothing it opens leaves the folder
    (shards an index names and files of a folder are resolved and checked too)."""
    return read_weights(server_path(relative), max_bytes, name=Path(relative).name, root=server_root())


def server_files() -> list[str]:
    """Weight files and model folders under QCORE_WEIGHTS_DIR (relative names, a folder's ending in '/'), or []
    when the folder is off. A model folder (config.json beside .safetensors) is one entry: its files are not listed
    on their own."""
    root = os.environ.get(WEIGHTS_DIR_ENV)
    if not root or not Path(root).is_dir():
        return []
    base = Path(root).resolve()
    inside = lambda p: Path(os.path.realpath(p)).is_relative_to(base)  # noqa: E731  a link leading out is refused
    folders = [c.parent for c in base.rglob("config.json") if any(c.parent.glob("*.safetensors")) and inside(c.parent)]
    files = [
        p for p in base.rglob("*")
        if p.is_file() and p.name.lower().endswith(SUFFIXES) and inside(p) and not any(p.is_relative_to(f) for f in folders)
    ]  # fmt: skip
    return sorted([f"{f.relative_to(base)}/" for f in folders if f != base] + [str(p.relative_to(base)) for p in files])


def server_stamp(relative: str) -> str:
    """What changes when a server file or model folder changes: size and mtime (a folder's: over its files)."""
    path = server_path(relative)
    stats = [p.stat() for p in sorted(path.rglob("*")) if p.is_file()] if path.is_dir() else [path.stat()]
    return f"{sum(s.st_size for s in stats)}:{max((s.st_mtime_ns for s in stats), default=0)}"
