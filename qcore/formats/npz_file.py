"""NumPy .npz archives: every member's .npy header is read and checked (dtype, claimed shape against the bytes it
holds, the memory budget) before any array data is inflated. Pickle never runs (object arrays are refused).

Float arrays (float16/32/64, either byte order) become float32 tensors; integer and bool arrays are skipped, as
every reader skips them; dtypes that have no float32 reading (structured, string, object, complex, long double)
are refused with their name.
"""

from __future__ import annotations

import ast
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import QcoreError
from ..format import fmt_bytes
from ..models.model import Model
from .archive import open_zip
from .budget import check_budget
from .common import check_shape, eager_model, to_float32

MAX_NPY_HEADER = 10_000  # characters of a .npy header dict (numpy's own limit)
HEADER_FORMATS = {(1, 0): ("<H", "latin1"), (2, 0): ("<I", "latin1"), (3, 0): ("<I", "utf8")}
DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError)  # a member that will not inflate
REFUSED_KINDS = {
    "O": "object values, which only pickle can read (and pickle is never allowed)",
    "V": "a structured (record) dtype, not a plain array of numbers",
    "U": "text strings, not numbers",
    "S": "byte strings, not numbers",
    "c": "complex values, which have no float32 reading",
}


@dataclass(frozen=True)
class Member:
    """One array of the archive, as its header describes it."""

    info: zipfile.ZipInfo
    name: str  # the array's name (the member's name less .npy)
    dtype: np.dtype
    shape: tuple[int, ...]
    fortran: bool

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def is_float(self) -> bool:
        return self.dtype.kind == "f"


def npz_model(path: Path, label: str) -> Model:
    """A Model of the float arrays in an .npz, each checked from its header before its data is read."""
    with open_zip(path, label, ".npz") as z:
        members = [_member(z, info, label) for info in z.infolist()]
        floats = [m for m in members if m.is_float]
        peak = sum(4 * math.prod(m.shape) for m in floats) + max((m.nbytes for m in floats), default=0)
        check_budget(label, peak, f"{len(floats):,} arrays as float32")
        tensors = {m.name: torch.from_numpy(_read(z, m, label)) for m in floats}
    skipped = tuple(f"{m.name} ({m.dtype.name})" for m in members if not m.is_float)
    return eager_model(label, tensors, skipped)


def _member(z: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> Member:
    where = f"{label}: member {info.filename[:80]}"
    if not info.filename.endswith(".npy"):
        raise QcoreError(f"{where} is not a .npy array; an .npz holds only arrays (as np.savez writes it)")
    try:
        with z.open(info) as f:
            header = _header(f, where)
            start = f.tell()
    except DAMAGED:
        raise QcoreError(f"{where} cannot be inflated (a damaged zip)") from None
    dtype = _dtype(header["descr"], where)
    shape = check_shape(label, info.filename[:-4], list(header["shape"]))
    m = Member(info, info.filename[:-4], dtype, shape, header["fortran_order"])
    held = info.file_size - start
    if m.nbytes != held:
        raise QcoreError(
            f"{where} claims {math.prod(shape):,} {dtype.name} values ({fmt_bytes(m.nbytes)}) but holds "
            f"{held:,} bytes of data"
        )
    return m


def _header(f, where: str) -> dict:
    """The .npy header dict {descr, fortran_order, shape}, parsed without numpy's messages (they quote it)."""
    try:
        version = np.lib.format.read_magic(f)
        length_format, encoding = HEADER_FORMATS[version]
        raw = f.read(struct.calcsize(length_format))
        (n,) = struct.unpack(length_format, raw)
        if n > MAX_NPY_HEADER:
            raise QcoreError(f"{where} has a {n:,}-byte array header, over the {MAX_NPY_HEADER:,}-byte limit")
        text = f.read(n).decode(encoding)
        header = ast.literal_eval(text)
    except QcoreError:
        raise
    except (ValueError, KeyError, struct.error, SyntaxError, RecursionError, MemoryError, UnicodeDecodeError):
        raise QcoreError(f"{where} is not a .npy array (its header does not parse)") from None
    if not (
        isinstance(header, dict)
        and set(header) == {"descr", "fortran_order", "shape"}
        and isinstance(header["fortran_order"], bool)
        and isinstance(header["shape"], tuple)
    ):
        raise QcoreError(f"{where} has a malformed .npy header (needs descr, fortran_order and a shape tuple)")
    return header


def _dtype(descr, where: str) -> np.dtype:
    try:
        dtype = np.lib.format.descr_to_dtype(descr)
    except (TypeError, ValueError, KeyError, IndexError, RecursionError):
        raise QcoreError(f"{where} has an unknown dtype") from None
    if dtype.hasobject:
        raise QcoreError(f"{where} holds {REFUSED_KINDS['O']}; refused")
    if dtype.names is not None or dtype.subdtype is not None:
        raise QcoreError(f"{where} holds {REFUSED_KINDS['V']}; refused")
    if dtype.kind in REFUSED_KINDS:
        raise QcoreError(f"{where} holds {REFUSED_KINDS[dtype.kind]} ({dtype.name}); refused")
    if dtype.kind == "f" and dtype.itemsize > 8:
        raise QcoreError(
            f"{where} holds long double ({dtype.name}) values, which float32 cannot hold faithfully; "
            "save it as float64 or float32"
        )
    return dtype


def _read(z: zipfile.ZipFile, m: Member, label: str) -> np.ndarray:
    """The array's data as float32 (either byte order), in its own shape and order."""
    try:
        with z.open(m.info) as f:
            _header(f, label)
            data = f.read(m.nbytes)
    except DAMAGED:
        raise QcoreError(f"{label}: member {m.info.filename[:80]} cannot be inflated (a damaged zip)") from None
    if len(data) != m.nbytes:
        raise QcoreError(f"{label}: member {m.info.filename[:80]} is cut short")
    flat = np.frombuffer(data, m.dtype)
    a = flat.reshape(m.shape[::-1]).T if m.fortran else flat.reshape(m.shape)
    return np.ascontiguousarray(to_float32(a, label, m.name))
