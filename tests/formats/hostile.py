"""Hostile and broken weight files, one generator per case, and a harness that runs the CLI on them.

Each `Case` writes one file (or a folder) and says what the refusal must contain. The files are named as the
dashboard names an upload on disk (a hash prefix before the user's name), so a test can tell the user's name
from the temp name in a message.

Run as `python -m tests.formats.hostile`, this module is the harness: it imports qcore once, then answers one
JSON request per line, each in a forked child under an address-space cap and a time limit: the CLI's own `main`
on an argv, a run of a server-folder file, or a read that reports its peak RSS. (A fresh `python -m qcore` per case
spends seconds importing torch; a fork of one warm process starts in milliseconds.)
"""

from __future__ import annotations

import collections
import functools
import io
import json
import os
import pickle
import resource
import signal
import struct
import sys
import tempfile
import time
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from safetensors.torch import save_file

PREFIX = "3f2a9c0d1e5b7a44-"  # the dashboard's temp files start with 16 hex digits of the upload's sha256
MARKER = "pickle-code-ran"  # a file the pickle-code cases would create if their code ever ran
PASSWD = b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"


@dataclass(frozen=True)
class Case:
    """One hostile file. `make(folder)` writes it and returns the path to open (for a server case, the path
    relative to the weights folder, which is `folder`). `expect` is a substring of the refusal; None marks a valid
    file, which `check(model)` verifies."""

    id: str
    file: str  # the user's name for it
    make: Callable[[Path], Path]
    expect: str | None
    server: bool = False  # opened through QCORE_WEIGHTS_DIR (the dashboard's server folder), not --weights
    bomb: bool = False  # decodes to far more than memory allows: the refusal must come before the allocation
    forbid: tuple[str, ...] = ()  # substrings the message must not carry (file contents)
    check: Callable | None = None


CASES: list[Case] = []


def case(file: str, expect: str | None, **kw):
    """Register the decorated generator as a Case named after it (underscores become dashes)."""

    def add(make: Callable[[Path], Path]) -> Callable[[Path], Path]:
        CASES.append(Case(make.__name__.replace("_", "-"), file, make, expect, **kw))
        return make

    return add


def write(folder: Path, file: str, content: bytes) -> Path:
    p = folder / (PREFIX + file)
    p.write_bytes(content)
    return p


# ---- byte-level builders -----------------------------------------------------------------------


def st_bytes(header: dict | str | bytes, data: bytes = b"") -> bytes:
    """A safetensors file: 8-byte length, the header (a dict, or raw JSON text), the data."""
    raw = header if isinstance(header, bytes) else (header if isinstance(header, str) else json.dumps(header)).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def f32(name: str, shape: list[int], begin: int) -> dict:
    n = int(np.prod(shape)) * 4
    return {name: {"dtype": "F32", "shape": shape, "data_offsets": [begin, begin + n]}}


@dataclass(frozen=True)
class Deflated:
    """A zip member's data, deflated once: `chunk` repeated `times` times (each piece a self-contained deflate
    block, so gigabytes inflate from a small file without ever being held or compressed whole)."""

    chunk: bytes
    times: int
    level: int = 9

    def parts(self) -> tuple[bytes, int, int]:
        """(deflated bytes, crc32, inflated size)."""
        return deflate(self.chunk, self.times, self.level)


@functools.cache
def deflate(chunk: bytes, times: int, level: int) -> tuple[bytes, int, int]:
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(times):
        crc = zlib.crc32(chunk, crc)
    final = zlib.compressobj(level, zlib.DEFLATED, -15).flush()  # an empty last block
    return block * times + final, crc, len(chunk) * times


def write_zip(path: Path, members: list[tuple[str, bytes | Deflated]]) -> Path:
    """A zip archive written byte by byte: bytes members stored, Deflated members as given (no zip64)."""
    out, central = bytearray(), bytearray()
    for name, data in members:
        if isinstance(data, Deflated):
            payload, crc, size, method = *data.parts(), 8
        else:
            payload, crc, size, method = data, zlib.crc32(data), len(data), 0
        raw = name.encode()
        common = struct.pack("<HHHHHIII", 20, 0, method, 0, 0x21, crc, len(payload), size)
        central += b"PK\x01\x02" + struct.pack("<H", 20) + common
        central += struct.pack("<HHHHHII", len(raw), 0, 0, 0, 0, 0, len(out)) + raw
        out += b"PK\x03\x04" + common + struct.pack("<HH", len(raw), 0) + raw + payload
    count = len(members)
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, count, count, len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))
    return path


@dataclass(frozen=True)
class FakeTensor:
    """A tensor as a checkpoint's pickle describes it: a storage (key, element count, storage class) and a view."""

    key: str
    numel: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    storage: type = torch.FloatStorage

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, (StorageRef(self), 0, self.shape, self.stride, False,
                                                 collections.OrderedDict())  # fmt: skip


@dataclass(frozen=True)
class StorageRef:
    tensor: FakeTensor


class CheckpointPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):
            t = obj.tensor
            return "storage", t.storage, t.key, "cpu", t.numel
        return None


def checkpoint(path: Path, tensors: dict, storages: dict[str, bytes | Deflated], extra=()) -> Path:
    """A torch.save-style zip whose pickle holds `tensors` (FakeTensors) and whose data/<key> members hold
    `storages`, written without torch.save (so sizes, strides and members can lie)."""
    buf = io.BytesIO()
    CheckpointPickler(buf, protocol=2).dump(tensors)
    folder = "archive"
    members = [
        (f"{folder}/data.pkl", buf.getvalue()),
        (f"{folder}/byteorder", b"little"),
        (f"{folder}/version", b"3\n"),
    ]
    members += [(f"{folder}/data/{k}", v) for k, v in storages.items()]
    return write_zip(path, members + list(extra))


def npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=True)
    return buf.getvalue()


def npy_header(descr: str, shape: tuple, fortran: bool = False) -> bytes:
    """A version 1.0 .npy header claiming `descr` and `shape` (no data)."""
    text = repr({"descr": descr, "fortran_order": fortran, "shape": shape})
    text += " " * ((-(len(text) + 11)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def artifact_rows(method: str = "rtn", options: dict | None = None) -> list[dict]:
    """The rows of a valid artifact for one (16, 128) tensor, as dicts to break."""
    from qcore import Model, run  # the lab's own writer

    W = torch.randn(16, 128, generator=torch.Generator().manual_seed(0))
    res = run(Model("m", {"fc.weight": W}), method, options or {"bits": 4, "group_size": 64})
    return pq.read_table(pa.BufferReader(res.artifact)).to_pylist()


def write_artifact(path: Path, rows: list[dict], metadata: dict | None = None, compression: str = "none") -> Path:
    from qcore.formats.table import FILE_METADATA, SCHEMA

    table = pa.Table.from_pylist(rows, schema=SCHEMA).replace_schema_metadata(metadata or FILE_METADATA)
    pq.write_table(table, path, compression=compression)
    return path


def broken_artifact(folder: Path, file: str, change: Callable[[dict], None], metadata=None) -> Path:
    rows = artifact_rows()
    for r in rows:
        change(r)
    return write_artifact(folder / (PREFIX + file), rows, metadata)


def save_torch(folder: Path, file: str, obj, **kw) -> Path:
    p = folder / (PREFIX + file)
    torch.save(obj, p, **kw)
    return p


def evil_payload(folder: Path):
    """An object whose unpickling would create the marker file in `folder`."""

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {folder / MARKER}",)

    return Evil()


# ---- safetensors -------------------------------------------------------------------------------

GOOD = {**f32("a", [2, 2], 0), **f32("b", [2], 16)}


@case("empty.safetensors", "the file is empty")
def st_empty(folder):
    return write(folder, "empty.safetensors", b"")


@case("tiny.safetensors", "too short for a safetensors file")
def st_tiny(folder):
    return write(folder, "tiny.safetensors", b"\x05\x00\x00")


@case("notes.safetensors", "starts with text", forbid=("root:x", "daemon"))
def st_text(folder):
    return write(folder, "notes.safetensors", PASSWD)


@case("zero.safetensors", "header length is 0")
def st_zero_length_header(folder):
    return write(folder, "zero.safetensors", struct.pack("<Q", 0) + b"\x00" * 16)


@case("past.safetensors", "larger than the file")
def st_header_past_eof(folder):
    return write(folder, "past.safetensors", struct.pack("<Q", 10_000) + b"{}")


@case("huge.safetensors", "exceeds the 100,000,000-byte limit")
def st_header_over_limit(folder):
    return write(folder, "huge.safetensors", struct.pack("<Q", 200_000_000) + b"{}")


@case("deep.safetensors", "nests too deeply")
def st_deep_nesting(folder):
    return write(folder, "deep.safetensors", st_bytes('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"))


@case("latin.safetensors", "not UTF-8")
def st_not_utf8(folder):
    return write(folder, "latin.safetensors", st_bytes(b'{"\xff\xfe": 1}'))


@case("cut.safetensors", "not valid JSON")
def st_bad_json(folder):
    return write(folder, "cut.safetensors", st_bytes('{"a": {"dtype": "F32", '))


@case("list.safetensors", "not an object")
def st_header_not_object(folder):
    return write(folder, "list.safetensors", st_bytes("[1, 2, 3]"))


@case("q7.safetensors", "unknown dtype 'Q7'")
def st_unknown_dtype(folder):
    return write(
        folder, "q7.safetensors", st_bytes({"a": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 1]}}, b"\0")
    )


@case("negative.safetensors", "invalid shape")
def st_negative_dim(folder):
    return write(
        folder,
        "negative.safetensors",
        st_bytes({"a": {"dtype": "F32", "shape": [-1, 2], "data_offsets": [0, 8]}}, b"\0" * 8),
    )


@case("empty-huge.safetensors", "impossible shape [0, 4611686018427387904]")
def st_empty_dim_overflow(folder):
    header = {"w": {"dtype": "F32", "shape": [0, 2**62], "data_offsets": [0, 0]}, **f32("a", [2, 2], 0)}
    return write(folder, "empty-huge.safetensors", st_bytes(header, b"\0" * 16))


@case("vast.safetensors", "impossible shape")
def st_shape_overflow(folder):
    return write(
        folder,
        "vast.safetensors",
        st_bytes({"a": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}, b"\0" * 8),
    )


@case("overlap.safetensors", "overlaps the tensor before it")
def st_overlap(folder):
    return write(folder, "overlap.safetensors", st_bytes({**f32("a", [2], 0), **f32("b", [2], 4)}, b"\0" * 12))


@case("gap.safetensors", "a gap of 4 bytes")
def st_gap(folder):
    return write(folder, "gap.safetensors", st_bytes({**f32("a", [2], 0), **f32("b", [2], 12)}, b"\0" * 20))


@case("short.safetensors", "truncated")
def st_truncated(folder):
    return write(folder, "short.safetensors", st_bytes(GOOD, b"\0" * 24)[:-5])


@case("trailing.safetensors", "6 trailing bytes")
def st_trailing(folder):
    return write(folder, "trailing.safetensors", st_bytes(GOOD, b"\0" * 30))


@case("twice.safetensors", "names 'w' twice")
def st_duplicate_keys(folder):
    w1 = json.dumps(f32("w", [2, 2], 0))[1:-1]
    w2 = json.dumps(f32("w", [4, 4], 0))[1:-1]
    return write(folder, "twice.safetensors", st_bytes("{" + w1 + ", " + w2 + "}", b"\0" * 64))


@case("f64.safetensors", "out of float32 range")
def st_f64_overflow(folder):
    data = np.array([[1e300, 1.0], [2.0, 3.0]], "<f8").tobytes()
    return write(
        folder, "f64.safetensors", st_bytes({"w": {"dtype": "F64", "shape": [2, 2], "data_offsets": [0, 32]}}, data)
    )


@case("nan.safetensors", "1 NaN and 0 Inf values")
def st_nan_weights(folder):
    W = torch.randn(8, 8)
    W[1, 2] = float("nan")
    p = folder / (PREFIX + "nan.safetensors")
    save_file({"a.weight": W, "b.weight": torch.randn(8, 8)}, p)
    return p


@case("escape.safetensors", "a b.weight: tensor has 1 NaN", forbid=("[31m",))
def st_escapes_in_a_name(folder):
    """A tensor name carrying a terminal escape and a line break, reaching a message at run time."""
    W = torch.randn(4, 4)
    W[0, 0] = float("nan")
    p = folder / (PREFIX + "escape.safetensors")
    save_file({"a\x1b[31m\nb.weight": W}, p)
    return p


@case("ints.safetensors", "no float tensors to quantize")
def st_only_integers(folder):
    p = folder / (PREFIX + "ints.safetensors")
    save_file({"ids": torch.arange(8)}, p)
    return p


@case("hollow.safetensors", "no tensor with any elements to quantize")
def st_only_empty_tensors(folder):
    p = folder / (PREFIX + "hollow.safetensors")
    save_file({"a.weight": torch.zeros(0, 4), "b.weight": torch.zeros(4, 0)}, p)
    return p


@case("link.safetensors", "starts with text", forbid=("root:x", "daemon"))
def st_link_to_text(folder):
    (folder / "passwd").write_bytes(PASSWD)
    p = folder / (PREFIX + "link.safetensors")
    p.symlink_to(folder / "passwd")
    return p


def index_folder(folder: Path, weight_map: dict | str, shards: dict[str, dict] = ()) -> Path:
    for name, tensors in dict(shards).items():
        save_file(tensors, folder / name)
    p = folder / (PREFIX + "model.safetensors.index.json")
    p.write_text(weight_map if isinstance(weight_map, str) else json.dumps({"weight_map": weight_map}))
    return p


@case("model.safetensors.index.json", "not valid JSON")
def index_bad_json(folder):
    return index_folder(folder, '{"weight_map": ')


@case("model.safetensors.index.json", "must be a plain file name")
def index_traversal(folder):
    return index_folder(folder, {"a": "../../etc/passwd"})


@case("model.safetensors.index.json", "shard two.safetensors is missing")
def index_missing_shard(folder):
    return index_folder(
        folder, {"a": "one.safetensors", "b": "two.safetensors"}, {"one.safetensors": {"a": torch.ones(2, 2)}}
    )


@case("model.safetensors.index.json", "nests too deeply")
def index_deep_nesting(folder):
    return index_folder(folder, '{"weight_map": ' + "[" * 100_000 + "]" * 100_000 + "}")


@case("model.safetensors.index.json", "'w' appears in both")
def index_tensor_in_two_shards(folder):
    shards = {"one.safetensors": {"w": torch.ones(2, 2)}, "two.safetensors": {"w": torch.ones(3, 3)}}
    return index_folder(folder, {"w": "one.safetensors", "x": "two.safetensors"}, shards)


def outside(folder: Path) -> Path:
    """A folder beside the weights folder (`folder`), holding a valid model and a passwd-like file."""
    out = folder.parent / (folder.name + "-outside")
    out.mkdir(exist_ok=True)
    save_file({"secret.weight": torch.ones(4, 4)}, out / "secret.safetensors")
    (out / "passwd").write_bytes(PASSWD)
    return out


@case("model.safetensors.index.json", "leads outside the server's weights folder", server=True)
def server_index_shard_symlink(folder):
    (folder / "escape").mkdir()
    (folder / "escape" / "s.safetensors").symlink_to(outside(folder) / "secret.safetensors")
    (folder / "escape" / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "s.safetensors"}}))
    return Path("escape/model.safetensors.index.json")


@case("shards", "leads outside the server's weights folder", server=True)
def server_folder_symlink(folder):
    (folder / "shards").mkdir()
    save_file({"a.weight": torch.ones(2, 2)}, folder / "shards" / "a.safetensors")
    (folder / "shards" / "b.safetensors").symlink_to(outside(folder) / "secret.safetensors")
    return Path("shards")


@case("m.safetensors", "outside the server's weights folder", server=True, forbid=("root:x", "daemon"))
def server_symlink_to_passwd(folder):
    (folder / "m.safetensors").symlink_to(outside(folder) / "passwd")
    return Path("m.safetensors")


@case("a\\0b.safetensors", "cannot contain a NUL byte", server=True)
def server_nul_in_name(folder):
    return Path("a\0b.safetensors")


# ---- PyTorch -----------------------------------------------------------------------------------


@case("garbage.pt", "not a PyTorch checkpoint (neither a zip archive nor a pickle)")
def pt_garbage(folder):
    return write(folder, "garbage.pt", bytes(np.random.default_rng(0).integers(1, 127, 4096, dtype=np.uint8)))


@case("empty.pt", "the file is empty")
def pt_empty(folder):
    return write(folder, "empty.pt", b"")


@case("half.pt", "not a valid PyTorch checkpoint (a zip archive cut short, or damaged)")
def pt_truncated(folder):
    p = save_torch(folder, "half.pt", {"w": torch.randn(64, 64)})
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return p


@case("evil.pt", "refused: loading it would run arbitrary pickle code (it calls posix.system)")
def pt_pickle_code(folder):
    return save_torch(folder, "evil.pt", {"w": torch.randn(2, 2), "payload": evil_payload(folder)})


@case("old.pt", "legacy (pre-1.6) format")
def pt_legacy_pickle_code(folder):
    obj = {"w": torch.randn(2, 2), "payload": evil_payload(folder)}
    return save_torch(folder, "old.pt", obj, _use_new_zipfile_serialization=False)


@case("bomb.pt", "(a zip bomb); refused", bomb=True)
def pt_zip_bomb(folder):
    """2 MiB on disk; its one storage inflates to 2 GiB."""
    t = FakeTensor("0", 2**29, (2**15, 2**14), (2**14, 1))
    return checkpoint(folder / (PREFIX + "bomb.pt"), {"w": t}, {"0": Deflated(bytes(16 << 20), 128)})


@case("stride0.pt", "decodes to 4.00 GiB (tensor 'w' is a stride-0 view of 4 stored bytes)", bomb=True)
def pt_stride0_float32(folder):
    """One float viewed with stride 0 as 2^30 elements."""
    return save_torch(folder, "stride0.pt", {"w": torch.ones(1).expand(2**30).view(2**15, 2**15)})


@case("stride0-f16.pt", "decodes to 16.00 GiB (tensor 'w' is a stride-0 view of 2 stored bytes)", bomb=True)
def pt_stride0_float16(folder):
    """One float16 viewed with stride 0 as 2^32 elements: 16 GiB as float32."""
    return save_torch(folder, "stride0-f16.pt", {"w": torch.ones(1, dtype=torch.float16).expand(2**16, 2**16)})


@case("expand.pt", "(a stride-0 view, a memory bomb); refused")
def pt_stride0_within_budget(folder):
    """A stride-0 view small enough for any budget (2 MiB) but a million times its storage."""
    return save_torch(folder, "expand.pt", {"w": torch.ones(1).expand(2**10, 2**9)})


@case("escape.pt", "escapes the archive (a path-traversal name)")
def pt_path_traversal_member(folder):
    t = FakeTensor("0", 4, (2, 2), (2, 1))
    evil = [("archive/../../evil.txt", b"written outside")]
    return checkpoint(folder / (PREFIX + "escape.pt"), {"w": t}, {"0": np.ones(4, np.float32).tobytes()}, evil)


@case("script.pt", "a TorchScript archive")
def pt_torchscript(folder):
    members = [
        ("m/constants.pkl", pickle.dumps((), protocol=2)),
        ("m/code/__torch__.py", b"x = 1\n"),
        ("m/version", b"3\n"),
    ]
    return write_zip(folder / (PREFIX + "script.pt"), members)


@case("liar.pt", "tensor 'w' needs 64 bytes of storage, the zip holds 16")
def pt_storage_larger_than_member(folder):
    t = FakeTensor("0", 16, (4, 4), (4, 1))
    return checkpoint(folder / (PREFIX + "liar.pt"), {"w": t}, {"0": np.ones(4, np.float32).tobytes()})


@case("past.pt", "needs 64 bytes of storage, the zip holds 16")
def pt_view_past_storage(folder):
    t = FakeTensor("0", 4, (4, 4), (4, 1))  # 16 elements over a storage of 4
    return checkpoint(folder / (PREFIX + "past.pt"), {"w": t}, {"0": np.ones(4, np.float32).tobytes()})


@case("packed.pt", "storage data/0 is compressed inside the zip")
def pt_compressed_storage(folder):
    t = FakeTensor("0", 4096, (64, 64), (64, 1))
    data = np.random.default_rng(0).standard_normal(4096).astype(np.float32).tobytes()
    return checkpoint(folder / (PREFIX + "packed.pt"), {"w": t}, {"0": Deflated(data, 1, level=6)})


@case("steps.pt", "no float tensors to quantize")
def pt_no_tensors(folder):
    return save_torch(folder, "steps.pt", {"step": 3, "ids": torch.arange(4)})


@case("f64.pt", "out of float32 range")
def pt_f64_overflow(folder):
    return save_torch(folder, "f64.pt", {"w": torch.tensor([[1e300, 1.0], [2.0, 3.0]], dtype=torch.float64)})


@case("sparse.pt", "is sparse_coo; save it dense")
def pt_sparse(folder):
    return save_torch(folder, "sparse.pt", {"w": torch.eye(4).to_sparse()})


def lists_check(model):
    expected = {"layers.0": torch.ones(2, 3), "layers.1.0": torch.full((4, 2), 2.0), "head.weight": torch.eye(3)}
    assert list(model.tensors) == list(expected), list(model.tensors)
    for k, v in expected.items():
        assert torch.equal(model.tensors[k], v), k


@case("lists.pt", None, check=lists_check)
def pt_tensors_in_lists(folder):
    """Valid: tensors inside a list and a tuple are read, named by their index."""
    obj = {
        "layers": [torch.ones(2, 3), (torch.full((4, 2), 2.0, dtype=torch.float16),)],
        "head": {"weight": torch.eye(3)},
    }
    return save_torch(folder, "lists.pt", obj)


# ---- NumPy .npz --------------------------------------------------------------------------------


def npz(folder: Path, file: str, members: list[tuple[str, bytes | Deflated]]) -> Path:
    return write_zip(folder / (PREFIX + file), members)


@case("garbage.npz", "not a valid .npz (not a zip archive, or truncated)")
def npz_garbage(folder):
    return write(folder, "garbage.npz", b"\x00\x01garbage" * 100)


@case("empty.npz", "the file is empty")
def npz_empty(folder):
    return write(folder, "empty.npz", b"")


@case("half.npz", "not a valid .npz (not a zip archive, or truncated)")
def npz_truncated(folder):
    p = folder / (PREFIX + "half.npz")
    np.savez(p, w=np.ones((64, 64), np.float32))
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return p


@case("nothing.npz", "no float tensors to quantize")
def npz_no_members(folder):
    return npz(folder, "nothing.npz", [])


@case("bomb.npz", "(a zip bomb); refused", bomb=True)
def npz_zip_bomb(folder):
    """One member: 64 MiB of zeros, about 1000x compressed."""
    data = npy_header("<f4", (2**24,)) + bytes(2**26)
    return npz(folder, "bomb.npz", [("w.npy", Deflated(data, 1))])


@case("many.npz", "decodes to", bomb=True)
def npz_many_small_members(folder):
    """1,300 members of 1 MiB each (each under the bomb floor): 1.3 GiB from about 1.5 MB."""
    data = npy_header("<f4", ((2**20 - 128) // 4,)) + bytes(2**20 - 128)
    block = Deflated(data, 1)
    return npz(folder, "many.npz", [(f"w{i}.npy", block) for i in range(1300)])


@case("notes.npz", "member readme.txt is not a .npy array")
def npz_non_npy_member(folder):
    return npz(folder, "notes.npz", [("w.npy", npy(np.ones((2, 2), np.float32))), ("readme.txt", b"hello")])


@case("records.npz", "a structured (record) dtype")
def npz_structured(folder):
    a = np.zeros(3, dtype=[("x", "<f4"), ("y", "<i4")])
    return npz(folder, "records.npz", [("w.npy", npy(a))])


@case("long.npz", "long double")
def npz_longdouble(folder):
    return npz(folder, "long.npz", [("w.npy", npy(np.ones((2, 2), np.longdouble)))])


@case("words.npz", "text strings")
def npz_strings(folder):
    return npz(folder, "words.npz", [("w.npy", npy(np.array(["root", "x"])))])


@case("objects.npz", "only pickle can read")
def npz_object(folder):
    return npz(folder, "objects.npz", [("w.npy", npy(np.array([{"a": 1}], dtype=object)))])


@case("complex.npz", "complex values")
def npz_complex(folder):
    return npz(folder, "complex.npz", [("w.npy", npy(np.ones((2, 2), np.complex64)))])


@case("claims.npz", "claims 1,000,000,000 float32 values (3.73 GiB) but holds 40 bytes")
def npz_claims_1e9_elements(folder):
    return npz(folder, "claims.npz", [("w.npy", npy_header("<f4", (1_000_000_000,)) + bytes(40))])


@case("magic.npz", "member w.npy is not a .npy array")
def npz_bad_magic(folder):
    return npz(folder, "magic.npz", [("w.npy", b"not an array at all" * 8)])


@case("ints.npz", "no float tensors to quantize (only w (int64))")
def npz_only_integers(folder):
    return npz(folder, "ints.npz", [("w.npy", npy(np.arange(6).reshape(2, 3)))])


BIG_ENDIAN = np.arange(12, dtype=">f4").reshape(3, 4) / 7


def big_endian_check(model):
    assert torch.equal(model.tensors["w"], torch.from_numpy(BIG_ENDIAN.astype("<f4")))
    assert torch.equal(model.tensors["v"], torch.from_numpy(np.asfortranarray(BIG_ENDIAN).astype("<f4")))


@case("big-endian.npz", None, check=big_endian_check)
def npz_big_endian(folder):
    """Valid: big-endian float32, C and Fortran order, read as the same values."""
    members = [("w.npy", npy(BIG_ENDIAN)), ("v.npy", npy(np.asfortranarray(BIG_ENDIAN)))]
    return npz(folder, "big-endian.npz", members)


# ---- Parquet artifacts -------------------------------------------------------------------------


@case("bomb.parquet", "decodes to", bomb=True)
def pq_zstd_bomb(folder):
    """Our own schema: one float16 tensor of zeros, 1 GiB of codes that zstd packs into kilobytes."""
    from qcore.formats.table import FILE_METADATA, SCHEMA

    p = folder / (PREFIX + "bomb.parquet")
    row = {"name": "w", "encoding": "fp16", "method": "fp16", "config": "{}", "shape": [32768, 16384],
           "dtype": "float16", "bits": 16, "group_size": 0, "rows": 512, "codes": bytes(16 << 20), "scale": None,
           "scale_dtype": None, "zero": None, "zero_dtype": None, "zero_shared": False, "codebook": None}  # fmt: skip
    table = pa.Table.from_pylist([{**row, "row_start": 0}], schema=SCHEMA)
    at = SCHEMA.get_field_index("row_start")
    with pq.ParquetWriter(p, SCHEMA.with_metadata(FILE_METADATA), compression="zstd", use_dictionary=False,
                          write_statistics=False) as w:  # fmt: skip
        for r0 in range(0, 32768, 512):  # one chunk of 512 rows per row group, the codes column shared
            w.write_table(table.set_column(at, SCHEMA.field(at), pa.array([r0], pa.int64())))
    return p


@case("empty.parquet", "the file is empty")
def pq_empty(folder):
    return write(folder, "empty.parquet", b"")


@case("garbage.parquet", "cannot read the artifact as Parquet")
def pq_garbage(folder):
    return write(folder, "garbage.parquet", b"PAR1" + b"\x00" * 64)


@case("foreign.parquet", "not a qcore artifact of format 1 (found format 'none')")
def pq_foreign(folder):
    p = folder / (PREFIX + "foreign.parquet")
    pq.write_table(pa.table({"x": [1, 2, 3]}), p)
    return p


@case("negative.parquet", "group_size -64 is negative")
def pq_negative_group_size(folder):
    return broken_artifact(folder, "negative.parquet", lambda r: r.update(group_size=-64))


@case("mismatch.parquet", "group_size 32 means 4 scales per row of 128 inputs, the file holds 2")
def pq_mismatched_group_size(folder):
    return broken_artifact(folder, "mismatch.parquet", lambda r: r.update(group_size=32))


@case("config.parquet", "config is not valid JSON")
def pq_bad_config(folder):
    return broken_artifact(folder, "config.parquet", lambda r: r.update(config='{"bits": 4'))


@case("scale.parquet", "unknown scale dtype 'bfloat99'")
def pq_bogus_scale_dtype(folder):
    return broken_artifact(folder, "scale.parquet", lambda r: r.update(scale_dtype="bfloat99"))


@case("null.parquet", "codes are missing (null)")
def pq_null_codes(folder):
    return broken_artifact(folder, "null.parquet", lambda r: r.update(codes=None))


@case("packing.parquet", "unknown packing 'msb-first'")
def pq_unknown_packing(folder):
    from qcore.formats.table import FILE_METADATA

    return broken_artifact(folder, "packing.parquet", lambda r: None, {**FILE_METADATA, "qcore.packing": "msb-first"})


@case("encoding.parquet", "unknown encoding 'lattice9'")
def pq_unknown_encoding(folder):
    return broken_artifact(folder, "encoding.parquet", lambda r: r.update(encoding="lattice9"))


@case("columns.parquet", "columns codes are missing")
def pq_missing_column(folder):
    from qcore.formats.table import FILE_METADATA

    p = folder / (PREFIX + "columns.parquet")
    rows = [{k: v for k, v in r.items() if k != "codes"} for r in artifact_rows()]
    pq.write_table(pa.Table.from_pylist(rows).replace_schema_metadata(FILE_METADATA), p)
    return p


@case("half.parquet", "cannot read the artifact as Parquet")
def pq_truncated(folder):
    p = broken_artifact(folder, "half.parquet", lambda r: None)
    p.write_bytes(p.read_bytes()[:-100])
    return p


@case("rows.parquet", "do not fill 20 rows")
def pq_rows_disagree_with_codes(folder):
    return broken_artifact(folder, "rows.parquet", lambda r: r.update(rows=20))


@case("none.parquet", "the artifact holds no tensors")
def pq_no_rows(folder):
    return write_artifact(folder / (PREFIX + "none.parquet"), [])


# ---- the harness -------------------------------------------------------------------------------


def serve() -> None:
    """Answer one JSON request per line on stdin with one JSON line on stdout, each run in a forked child."""
    torch.set_num_threads(1)  # no thread pool in the parent: forked children would inherit a broken one
    import qcore.api.runs  # noqa: F401  imported once, here; every child starts warm
    import qcore.cli  # noqa: F401

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        print(json.dumps(run_forked(json.loads(line))), flush=True)


def run_forked(req: dict) -> dict:
    """Run `req` in a child under RLIMIT_AS = req["cap"], killed after req["timeout"] seconds: its exit code,
    stdout, stderr and what it reported."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = {k: os.path.join(tmp, k) for k in ("stdout", "stderr", "result")}
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            code = 99
            try:
                fds = {k: os.open(v, os.O_WRONLY | os.O_CREAT, 0o600) for k, v in paths.items()}
                os.dup2(fds["stdout"], 1)
                os.dup2(fds["stderr"], 2)
                resource.setrlimit(resource.RLIMIT_AS, (req["cap"], req["cap"]))
                os.environ.update(req.get("env", {}))
                with open(fds["result"], "w") as result:
                    code = ACTIONS[req["action"]](req, result)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        status, timed_out = wait(pid, req["timeout"])
        out = {k: Path(v).read_text(errors="replace") if os.path.exists(v) else "" for k, v in paths.items()}
    return {"rc": os.waitstatus_to_exitcode(status), "timed_out": timed_out, "seconds": time.perf_counter() - t0,
            "stdout": out["stdout"], "stderr": out["stderr"], "result": json.loads(out["result"] or "null")}  # fmt: skip


def wait(pid: int, timeout: float) -> tuple[int, bool]:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status, False
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            return os.waitpid(pid, 0)[1], True
        time.sleep(0.005)


def cli(req: dict, result) -> int:
    """The CLI itself: what `python -m qcore ARGV` runs."""
    from qcore.cli import main

    return main(req["argv"])


def server_run(req: dict, result) -> int:
    """A run of a file in the server's weights folder (the dashboard's way in), refused as the CLI refuses."""
    from qcore import ModelRef, QcoreError, RunSpec
    from qcore.api.runs import run_spec

    try:
        run_spec(RunSpec.make(ModelRef("server", req["relative"]), "int8"), keep=False)
    except QcoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def read_rss(req: dict, result) -> int:
    """read_weights on a file, with the peak resident memory before and after."""
    from qcore import QcoreError
    from qcore.formats.readers import read_weights

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        read_weights(req["path"])
        refused = None
    except QcoreError as e:
        refused = str(e)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    json.dump({"before_kib": before, "after_kib": after, "refused": refused}, result)
    return 0


ACTIONS = {"cli": cli, "server": server_run, "rss": read_rss}

if __name__ == "__main__":
    serve()
