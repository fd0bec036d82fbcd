"""The artifact's table: its schema (every column below), pure tensors <-> rows, and the bytes each part takes.

Layout (format version 1). Each row is a run of consecutive output rows of one tensor, viewed as
(out, in); a tensor too big for one chunk spans several rows, in order.

    name        string        tensor name
    encoding    string        "affine" (W_hat = (q - zero) * scale), "codebook" ((codebook[q] - zero) * scale),
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

Vector and trellis codes (methods/coded.py) use encoding "e8p" (bits 16: one E8P code per 8 weights) or
"trellis L=<L> k=<k> T=<T>" (bits k: one symbol per weight, sequences of T), no zero and no code book (the E8P
points and the trellis's Gaussian code are computed from their definitions); codes hold the (rows, C) codes of the
chunk, scale the (rows, G) scales; a trellis's start states are the entry NAME + "::start", encoding "start",
(out, S) values of L - k bits.

A rotated tensor (an incoherence transform, methods/rotation.py) has one more entry, NAME + "::rot", encoding
"signs": its codes are the m + n sign bits of S_U then S_V (1 = -1), packed 1 bit each, shape [m, n]; the
transform's structure follows from m and n alone. Entries NAME + "::scale" and NAME + "::rot" count as metadata.

File key-value metadata carries the format version and the packing order. Plain pyarrow,
pandas or DuckDB read it; nothing needs an extension type. storage.py streams these rows into a file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import torch

from ..errors import QcoreError
from ..methods.coded import SCHEMES, CodedTensor
from ..methods.quant import MixedTensor, QuantizedTensor, num_groups
from ..methods.rotation import Rotation
from .artifact_check import check_row
from .packing import BIT_ORDER, pack_codes, packed_nbytes, unpack_codes

FORMAT_VERSION = "1"
CHUNK_BYTES = 16 << 20  # at most this many code bytes per row, so huge tensors stream in pieces

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
STRING_COLUMNS = ["name", "encoding", "method", "config", "dtype", "scale_dtype", "zero_dtype"]
_DTYPES = {"float16": torch.float16, "float32": torch.float32, "uint8": torch.uint8}
NESTED_SCALE = "::scale"  # suffix of the entry that holds a tensor's double-quantized scales
ROTATION = "::rot"  # suffix of the entry that holds a rotated tensor's sign vectors
START = "::start"  # suffix of the entry that holds a trellis's start states
SIDE = (NESTED_SCALE, ROTATION, START)  # entries that belong to another tensor's metadata
PART = "::b"  # infix of the entries that hold a row-mixed tensor's rows of one width


def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _raw(t: torch.Tensor) -> bytes:
    return t.contiguous().numpy().tobytes()


def encode_rows(name: str, item: QuantizedTensor | MixedTensor | torch.Tensor) -> Iterator[dict]:
    """One tensor as artifact rows (chunks of output rows), lazily. A plain tensor is stored as float16."""
    if isinstance(item, MixedTensor):
        return _encode_mixed(name, item)
    if isinstance(item, QuantizedTensor):
        return _encode_quantized(name, item)
    if isinstance(item, CodedTensor):
        return _encode_coded(name, item)
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
    per = chunk_rows(qt.bits, n)
    shared = _zero_shared(qt)
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
    if qt.rotation is not None:
        yield _encode_rotation(name + ROTATION, qt.rotation)


def _encode_coded(name: str, ct: CodedTensor) -> Iterator[dict]:
    out, C = ct.codes.shape
    per = chunk_rows(ct.code_bits, C)
    common = {
        "name": name, "encoding": ct.encoding, "method": ct.method, "config": json.dumps(ct.config, sort_keys=True),
        "shape": list(ct.shape), "dtype": "float32", "bits": ct.code_bits, "group_size": ct.group_size,
        "scale_dtype": _dtype_name(ct.scale), "zero": None, "zero_dtype": None, "zero_shared": False, "codebook": None,
    }  # fmt: skip
    for r0 in range(0, out, per):
        rows = ct.codes[r0 : r0 + per]
        yield {**common, "row_start": r0, "rows": len(rows), "codes": pack_codes(rows.numpy(), ct.code_bits),
               "scale": _raw(ct.scale[r0 : r0 + per])}  # fmt: skip
    if ct.start is not None:
        yield {**common, "name": name + START, "encoding": "start", "bits": ct.start_bits, "shape": list(ct.start.shape),
               "row_start": 0, "rows": out, "codes": pack_codes(ct.start.numpy(), ct.start_bits), "scale": None,
               "scale_dtype": None}  # fmt: skip
    if ct.rotation is not None:
        yield _encode_rotation(name + ROTATION, ct.rotation)


def _decode_coded(name: str, rows: list[dict], start: dict | None) -> CodedTensor:
    head = rows[0]
    shape, bits, out = tuple(head["shape"]), head["bits"], head["shape"][0]
    scheme, _, params = head["encoding"].partition(" ")
    values = tuple(int(v.split("=")[1]) for v in params.split()) if params else ()
    n = int(np.prod(shape[1:]))
    G = len(head["scale"]) // (head["rows"] * np.dtype(head["scale_dtype"]).itemsize)
    if scheme == "e8p":  # rows padded to whole groups, or to a multiple of 8
        C, dim = (G * head["group_size"] if G > 1 else -(-n // 8) * 8) // 8, 8
    else:  # rows padded to whole sequences
        C, dim = -(-n // values[2]) * values[2], 1
    codes = [unpack_codes(r["codes"], bits, r["rows"] * C).reshape(r["rows"], C) for r in rows]
    codes_t = torch.from_numpy(np.concatenate(codes).astype(np.int32))
    if codes_t.shape[0] != out:
        raise QcoreError(f"{name}: chunks hold {codes_t.shape[0]} rows, shape {list(shape)} needs {out}")
    scale = torch.cat([_tensor(r["scale"], head["scale_dtype"], (r["rows"], G), name) for r in rows])
    st = None
    if start is not None:
        S = start["shape"][1]
        st = torch.from_numpy(unpack_codes(start["codes"], start["bits"], out * S).astype(np.int32)).reshape(out, S)
    elif scheme != "e8p":
        raise QcoreError(f"{name}: the trellis's start states ({name}{START}) are missing")
    config = json.loads(head["config"])
    return CodedTensor(codes_t, scale, scheme, bits, dim, head["group_size"], shape, head["method"], config, st,
                       0 if start is None else start["bits"], values, None)  # fmt: skip


def _encode_rotation(name: str, rot: Rotation) -> dict:
    signs = torch.cat([rot.signs_u, rot.signs_v]).to(torch.uint8).numpy()  # (m + n,) 1 = -1
    return {
        "name": name, "encoding": "signs", "method": "rotation", "config": "{}", "shape": [rot.m, rot.n],
        "dtype": "bool", "bits": 1, "group_size": 0, "row_start": 0, "rows": 1, "codes": pack_codes(signs, 1),
        "scale": None, "scale_dtype": None, "zero": None, "zero_dtype": None, "zero_shared": False, "codebook": None,
    }  # fmt: skip


def _decode_rotation(name: str, row: dict) -> Rotation:
    m, n = row["shape"]
    signs = torch.from_numpy(unpack_codes(row["codes"], 1, m + n).astype(bool))
    return Rotation(signs[:m].clone(), signs[m:].clone())


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
        check_row(row)
        chunks.setdefault(row["name"], []).append(row)
    nested = {k.removesuffix(NESTED_SCALE): _decode(k, v, None) for k, v in chunks.items() if k.endswith(NESTED_SCALE)}
    rotations = {k.removesuffix(ROTATION): _decode_rotation(k, v[0]) for k, v in chunks.items() if k.endswith(ROTATION)}
    starts = {k.removesuffix(START): v[0] for k, v in chunks.items() if k.endswith(START)}
    out = {}
    for name, rows in chunks.items():
        if name.endswith(SIDE):
            continue
        if rows[0]["scale_dtype"] == "nested" and name not in nested:
            raise QcoreError(f"{name}: its double-quantized scales ({name}{NESTED_SCALE}) are missing")
        if rows[0]["encoding"].split(" ")[0] in SCHEMES:
            out[name] = _decode_coded(name, rows, starts.get(name))
        else:
            out[name] = _decode(name, rows, nested.get(name))
        if name in rotations and isinstance(out[name], QuantizedTensor | CodedTensor):
            out[name] = replace(out[name], rotation=rotations[name])
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
        scale = scale_q.dequantize().reshape(out, G)  # (out, G)
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


@dataclass(frozen=True)
class Layout:
    """What the stored bytes of a quantized tensor depend on (no data): `out` rows of `n` codes of `bits` bits,
    `groups` scales per row, zero item size (0: none stored) and whether it is shared, code book values, nested
    scales, a rotation over `out` x `in_features`, and per-row start values of a trellis (count, width)."""

    out: int
    n: int
    bits: int
    group_size: int
    groups: int
    scale_itemsize: int
    zero_itemsize: int
    zero_shared: bool
    codebook_values: int
    nested: Layout | None = None
    rotated: bool = False
    in_features: int = 0
    start: tuple[int, int] = (0, 0)

    def with_rows(self, out: int) -> Layout:
        """The same per-row structure for `out` rows (nested scales re-laid over out * groups values)."""
        if self.nested is None:
            return replace(self, out=out)
        total = out * self.groups  # the nested tensor is (1, out * groups)
        nested = replace(self.nested, n=total, groups=num_groups(total, self.nested.group_size))
        return replace(self, out=out, nested=nested)

    @property
    def chunks(self) -> int:
        """Rows of the file this tensor's codes take (chunks of at most CHUNK_BYTES)."""
        return -(-self.out // chunk_rows(self.bits, self.n))

    def nbytes(self) -> tuple[int, int]:
        """(payload, metadata) bytes as ArtifactWriter counts them: codes, then scales, zeros, code books and side
        entries (nested scales, rotation signs, trellis starts)."""
        per = chunk_rows(self.bits, self.n)
        full, rest = divmod(self.out, per)
        payload = full * packed_nbytes(per * self.n, self.bits) + (
            packed_nbytes(rest * self.n, self.bits) if rest else 0
        )
        groups = self.out * self.groups
        meta = 0 if self.nested else groups * self.scale_itemsize
        meta += self.zero_itemsize * (self.chunks if self.zero_shared else groups)
        meta += 4 * self.codebook_values * self.chunks
        if self.nested:
            meta += sum(self.nested.nbytes())  # a nested entry is metadata through and through
        if self.rotated:
            meta += packed_nbytes(self.out + self.in_features, 1)
        if self.start[0]:
            meta += packed_nbytes(self.out * self.start[0], self.start[1])
        return payload, meta


def layout_of(item: QuantizedTensor | CodedTensor) -> Layout:
    if isinstance(item, CodedTensor):
        start = (0, 0) if item.start is None else (item.start.shape[1], item.start_bits)
        return Layout(
            item.codes.shape[0], item.codes.shape[1], item.code_bits, item.group_size, item.scale.shape[1],
            item.scale.element_size(), 0, False, 0, None, item.rotation is not None, item.in_features, start,
        )  # fmt: skip
    out, n = item.q.shape
    return Layout(
        out, n, item.bits, item.group_size, item.scale.shape[1], item.scale.element_size(), item.zero.element_size(),
        _zero_shared(item), 0 if item.codebook is None else item.codebook.numel(),
        None if item.scale_q is None else layout_of(item.scale_q), item.rotation is not None, n,
    )  # fmt: skip


def chunk_rows(bits: int, n: int) -> int:
    """Output rows per stored chunk: at most CHUNK_BYTES of packed codes."""
    return max(1, CHUNK_BYTES * 8 // max(bits * n, 1))


def _zero_shared(qt: QuantizedTensor) -> bool:
    return qt.zero.numel() == 1 and qt.q.shape[0] * qt.scale.shape[1] != 1
