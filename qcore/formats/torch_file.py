"""PyTorch checkpoints (.pt, .pth, .bin), read without running pickle code and sized before any storage is read.

A checkpoint is a zip: `<folder>/data.pkl` (the pickled structure) and `<folder>/data/<key>` (each storage's raw
bytes, stored uncompressed by torch.save). Reading takes three steps:

1. the zip: members checked (archive.py); a compressed storage is refused, since torch.save never writes one and
   memory-mapping one would read its compressed bytes as weights;
2. the structure: torch.load(weights_only=True, map_location="meta") rebuilds every tensor without its data, so
   each storage's claimed size is matched to its member, each view's extent to its storage, and what the tensors
   decode to (stride-0 views expanded) is checked against the budget, all before a byte of data is read;
3. the data: torch.load(weights_only=True, mmap=True) maps the storages from the file, and each float tensor is
   copied to float32 one at a time.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import torch

from ..errors import QcoreError
from ..models.model import Model
from .archive import BOMB_FLOOR, MAX_RATIO, open_zip
from .budget import check_budget
from .common import clean_message, eager_model, tensor_to_float32

PICKLE_OBJECT_BYTES = 24  # Python bytes per byte of pickle, at worst (as for a JSON header)
UNSAFE_NAME = re.compile(r"GLOBAL (\S+?) (?:was not|whose module)|(\S+) must be \S+ to load")
KIND = "PyTorch checkpoint"


def torch_model(path: Path, label: str) -> Model:
    """A Model of every float tensor in a checkpoint, nested dicts, lists and tuples named `a.b.0`."""
    with open(path, "rb") as f:
        head = f.read(2)
    if not zipfile.is_zipfile(path):
        if head == b"PK":
            raise QcoreError(f"{label}: not a valid {KIND} (a zip archive cut short, or damaged)")
        if head[:1] == b"\x80":
            raise QcoreError(
                f"{label}: uses PyTorch's legacy (pre-1.6) format, whose sizes cannot be checked before loading; "
                "re-save it with a current torch.save, or convert it to safetensors"
            )
        raise QcoreError(f"{label}: not a {KIND} (neither a zip archive nor a pickle)")
    with open_zip(path, label, KIND) as z:
        offsets = _storage_members(path, z, label)
    structure = _flatten(_load(path, label, map_location="meta"), label)
    _check_structure(structure, offsets, label, path.stat().st_size)
    tensors = _flatten(_load(path, label, map_location="cpu", mmap=True), label)
    if {k: (t.dtype, t.shape) for k, t in tensors.items()} != {k: (t.dtype, t.shape) for k, t in structure.items()}:
        raise QcoreError(f"{label}: the file changed on disk while it was read; open it again")
    floats = {k: tensor_to_float32(t, label, k) for k, t in tensors.items() if t.is_floating_point()}
    skipped = tuple(f"{k} ({str(t.dtype).removeprefix('torch.')})" for k, t in tensors.items() if k not in floats)
    return eager_model(label, floats, skipped)


def _storage_members(path: Path, z: zipfile.ZipFile, label: str) -> dict[int, int]:
    """{file offset of a storage's bytes: its size}, for every `data/<key>` member; the pickle sized for the budget."""
    infos = {i.filename.partition("/")[2]: i for i in z.infolist() if "/" in i.filename}
    if "data.pkl" not in infos:
        if "constants.pkl" in infos or any(n.startswith("code/") for n in infos):
            raise QcoreError(
                f"{label}: a TorchScript archive (a program, not weights); save model.state_dict() with torch.save"
            )
        raise QcoreError(f"{label}: not a {KIND} (the zip holds no data.pkl)")
    check_budget(label, infos["data.pkl"].file_size * PICKLE_OBJECT_BYTES, "unpickling its structure")
    storages = {n: i for n, i in infos.items() if n.startswith("data/")}
    for n, i in storages.items():
        if i.compress_type != zipfile.ZIP_STORED:
            raise QcoreError(
                f"{label}: storage {n} is compressed inside the zip; torch.save never compresses storages, so the "
                "file was repacked; re-save it with torch.save"
            )
    try:
        reader = torch._C.PyTorchFileReader(str(path))
        return {reader.get_record_offset(n): i.file_size for n, i in storages.items()}
    except RuntimeError as e:
        raise QcoreError(f"{label}: not a readable {KIND} ({_reason(e)})") from None


def _load(path: Path, label: str, **kw) -> object:
    try:
        return torch.load(path, weights_only=True, **kw)
    except Exception as e:  # pickle.UnpicklingError when it would run code; torch's own errors vary by version
        text = str(e)
        if "Weights only load failed" in text or "Unsupported" in text:
            m = UNSAFE_NAME.search(text)
            what = f" (it calls {(m.group(1) or m.group(2))[:80]})" if m else ""
            raise QcoreError(
                f"{label}: refused: loading it would run arbitrary pickle code{what}; save a plain state_dict, "
                "or convert it to safetensors"
            ) from None
        raise QcoreError(f"{label}: not a readable {KIND} ({_reason(e)})") from None


def _reason(e: Exception) -> str:
    """The first line of a library's message, without its advice (never to turn weights_only off)."""
    first = clean_message(str(e).strip().splitlines()[0] if str(e).strip() else "")
    first = re.split(r"[.;]?\s*(?:Re-running|Please|Check the documentation|In PyTorch)", first)[0]
    if "weights_only" in first or not first:
        return type(e).__name__
    return f"{type(e).__name__}: {first[:160]}"


def _flatten(obj: object, label: str) -> dict[str, torch.Tensor]:
    """Every tensor in nested dicts, lists and tuples, named by its path (`model.layers.0.weight`)."""
    out: dict[str, torch.Tensor] = {}
    stack, seen = [("", obj)], set()
    while stack:
        prefix, value = stack.pop()
        if isinstance(value, torch.Tensor):
            name = prefix or "tensor"
            if name in out:
                raise QcoreError(f"{label}: tensor name '{name[:120]}' appears twice")
            out[name] = value
        elif isinstance(value, dict | list | tuple) and id(value) not in seen:
            seen.add(id(value))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack += [(f"{prefix}.{k}" if prefix else str(k), v) for k, v in reversed(list(items))]
        # other values (step counts, strings) carry no weights
    return out


def _check_structure(tensors: dict[str, torch.Tensor], members: dict[int, int], label: str, mapped: int) -> None:
    """Each storage matches its member, each view fits its storage, and the float32 copies (beside the `mapped`
    bytes of the file, memory-mapped to read them) fit the budget."""
    decoded = 0
    for name, t in tensors.items():
        if t.layout != torch.strided:
            raise QcoreError(f"{label}: tensor '{name}' is {str(t.layout).removeprefix('torch.')}; save it dense")
        storage = t.untyped_storage()
        offset = getattr(storage, "_checkpoint_offset", None)
        held = members.get(offset)
        if held != storage.nbytes():
            raise QcoreError(
                f"{label}: tensor '{name}' needs {storage.nbytes():,} bytes of storage, "
                + ("the zip holds no such storage" if held is None else f"the zip holds {held:,}")
            )
        extent = t.storage_offset() + 1 + sum((d - 1) * abs(s) for d, s in zip(t.shape, t.stride(), strict=True))
        if t.numel() and extent * t.element_size() > storage.nbytes():
            raise QcoreError(f"{label}: tensor '{name}' reaches past the end of its storage")
        if t.is_floating_point():
            expanded = t.numel() * t.element_size()
            if expanded > MAX_RATIO * max(storage.nbytes(), 1) and expanded > BOMB_FLOOR:
                view = f"tensor '{name}' is a stride-0 view of {storage.nbytes():,} stored bytes"
                check_budget(label, 4 * t.numel(), view)  # the budget's message where it is exceeded
                raise QcoreError(
                    f"{label}: tensor '{name}' expands {storage.nbytes():,} stored bytes to {t.numel():,} values "
                    "(a stride-0 view, a memory bomb); refused"
                )
            decoded += 4 * t.numel()
    check_budget(label, decoded + mapped, f"{len(tensors):,} tensors as float32, and the file mapped to read them")
