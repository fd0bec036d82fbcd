"""Weight files in: every reader, and each hostile or broken input with its own specific message."""

import json
import os
import struct
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from qcore import QcoreError, dequantize, load, run
from qcore.formats import budget, safetensors_file
from qcore.formats.readers import read_server_weights, read_weights, server_files, server_path
from qcore.measure.pipeline import Policy


def st_bytes(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def write(tmp_path, name, content: bytes):
    p = tmp_path / name
    p.write_bytes(content)
    return p


def good_header():
    return {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
            "b": {"dtype": "F16", "shape": [4], "data_offsets": [16, 24]}}  # fmt: skip


def test_safetensors_round_trip_with_skipped_integers(tmp_path):
    tensors = {"fc.weight": torch.randn(8, 16), "fc.bias": torch.randn(8).half(), "ids": torch.arange(8)}
    save_file(tensors, tmp_path / "m.safetensors")
    model = read_weights(tmp_path / "m.safetensors")
    assert set(model.tensors) == {"fc.weight", "fc.bias"}
    assert torch.equal(model.tensors["fc.weight"], tensors["fc.weight"])
    assert model.tensors["fc.bias"].dtype == torch.float32
    assert model.skipped == ("ids (I64)",) and "skipped non-float ids (I64)" in model.description
    assert model.params == 8 * 16 + 8


def test_bf16_is_read(tmp_path):
    save_file({"w": torch.randn(4, 4).bfloat16()}, tmp_path / "m.safetensors")
    assert read_weights(tmp_path / "m.safetensors").tensors["w"].dtype == torch.float32


def test_sharded_by_index_and_by_folder(tmp_path):
    save_file({"a.weight": torch.randn(4, 8)}, tmp_path / "model-00001-of-00002.safetensors")
    save_file({"b.weight": torch.randn(4, 8)}, tmp_path / "model-00002-of-00002.safetensors")
    index = {
        "weight_map": {"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors"}
    }
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    assert set(read_weights(tmp_path / "model.safetensors.index.json").tensors) == {"a.weight", "b.weight"}
    assert set(read_weights(tmp_path).tensors) == {"a.weight", "b.weight"}


def test_an_index_cannot_point_outside_its_folder(tmp_path):
    (tmp_path / "x.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "../etc/passwd"}}))
    with pytest.raises(QcoreError, match="must be a plain file name"):
        read_weights(tmp_path / "x.safetensors.index.json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\x05\x00\x00", "too short for a safetensors file"),
        (st_bytes(good_header(), b"\x00" * 24)[:-5], "truncated"),
        (struct.pack("<Q", 10_000) + b"{}", "larger than the file"),
        (struct.pack("<Q", 200_000_000) + b"{}", "exceeds the 100,000,000-byte limit"),
        (
            st_bytes(
                {
                    "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
                },
                b"\x00" * 12,
            ),
            "overlaps",
        ),  # fmt: skip
        (
            st_bytes(
                {
                    "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]},
                },
                b"\x00" * 20,
            ),
            "a gap of 4 bytes",
        ),  # fmt: skip
        (st_bytes({"a": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}, b"\x00" * 8), "overflows"),
        (st_bytes(good_header(), b"\x00" * 30), "6 trailing bytes"),
        (st_bytes([1, 2, 3], b""), "not an object"),  # type: ignore[arg-type]
        (st_bytes({"a": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 1]}}, b"\x00"), "unknown dtype 'Q7'"),
        (b"hello, this is a text file and not weights at all\n" * 3, "starts with text"),
    ],
    ids=[
        "empty",
        "tiny",
        "truncated",
        "header-longer-than-file",
        "header-over-100MB",
        "overlap",
        "gap",
        "shape-overflow",
        "trailing-bytes",
        "header-not-object",
        "unknown-dtype",
        "text-renamed",
    ],  # fmt: skip
)
def test_broken_safetensors_get_a_specific_message(tmp_path, content, message):
    p = write(tmp_path, "bad.safetensors", content)
    with pytest.raises(QcoreError, match=message):
        read_weights(p)


def test_pickle_that_runs_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    p = tmp_path / "evil.pt"
    torch.save({"w": torch.randn(2, 2), "payload": Evil()}, p)
    with pytest.raises(QcoreError, match="refused: loading it would run arbitrary pickle code"):
        read_weights(p)
    assert not marker.exists()


def test_plain_state_dict_pt_reads_nested(tmp_path):
    p = tmp_path / "m.pth"
    torch.save({"model": {"fc.weight": torch.randn(3, 4)}, "step": 7}, p)
    model = read_weights(p)
    assert list(model.tensors) == ["model.fc.weight"]


def test_zip_bomb_npz_is_refused(tmp_path):
    p = tmp_path / "bomb.npz"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("w.npy", b"\x00" * (64 << 20))  # 64 MiB of zeros compresses ~1000x
    with pytest.raises(QcoreError, match="zip bomb"):
        read_weights(p)


def test_npz_reads_and_object_arrays_are_refused(tmp_path):
    np.savez(tmp_path / "ok.npz", w=np.ones((3, 4), np.float32))
    assert read_weights(tmp_path / "ok.npz").tensors["w"].shape == (3, 4)
    np.savez(tmp_path / "obj.npz", w=np.array([{"a": 1}], dtype=object))
    with pytest.raises(QcoreError, match="never allowed"):
        read_weights(tmp_path / "obj.npz")


def test_file_over_the_upload_limit(tmp_path):
    p = write(tmp_path, "big.safetensors", b"\x00" * (3 << 20))
    with pytest.raises(QcoreError, match="over the 2 MiB limit"):
        read_weights(p, max_bytes=2 << 20)


def test_unsupported_suffix(tmp_path):
    with pytest.raises(QcoreError, match="unsupported file type"):
        read_weights(write(tmp_path, "w.onnx", b"x"))


@pytest.mark.parametrize("bad", ("nan", "inf"))
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, bad):
    W = torch.randn(8, 8)
    W[1, 2] = float(bad)
    save_file({"ok.weight": torch.randn(8, 8), "bad.weight": W}, tmp_path / "m.safetensors")
    with pytest.raises(
        QcoreError, match=r"bad\.weight: tensor has (1 NaN and 0 Inf|0 NaN and 1 Inf) values; quantization refuses"
    ):
        run(read_weights(tmp_path / "m.safetensors"), "int8")


def test_our_artifact_opens_again_dequantized(tmp_path):
    save_file({"fc.weight": torch.randn(16, 32)}, tmp_path / "m.safetensors")
    res = run(read_weights(tmp_path / "m.safetensors"), "rtn", {"bits": 4}, out=tmp_path / "a.parquet")
    again = read_weights(tmp_path / "a.parquet")
    assert torch.equal(again.tensors["fc.weight"], dequantize(load(tmp_path / "a.parquet")["fc.weight"]))
    assert "qcore artifact (rtn)" in again.description
    assert res.record["synthetic_output_cosine"] > 0.9


def test_streaming_run_equals_the_in_memory_run(tmp_path):
    save_file({"emb.weight": torch.randn(50, 16), "fc.weight": torch.randn(32, 16), "fc.bias": torch.randn(32)},
              tmp_path / "m.safetensors")  # fmt: skip
    model = read_weights(tmp_path / "m.safetensors")
    streamed = run(model, "int8", keep=False, out=tmp_path / "s.parquet").record
    held = run(model, "int8").record
    for key in ("quantized_bytes", "fp16_bytes", "weight_cosine", "sqnr_db", "synthetic_output_cosine"):
        assert streamed[key] == held[key]


def test_embeddings_follow_the_policy(tmp_path):
    save_file({"embeddings.word_embeddings.weight": torch.randn(100, 16), "encoder.fc.weight": torch.randn(16, 16)},
              tmp_path / "m.safetensors")  # fmt: skip
    model = read_weights(tmp_path / "m.safetensors")
    kept = run(model, "int8").record
    assert [la["name"] for la in kept["layers"]] == ["encoder.fc.weight"] and "embeddings kept FP16" in kept["policy"]
    both = run(model, "int8", policy=Policy(quantize_embeddings=True)).record
    assert len(both["layers"]) == 2


def test_server_folder_is_off_by_default_and_cannot_be_escaped(tmp_path, monkeypatch):
    monkeypatch.delenv("QCORE_WEIGHTS_DIR", raising=False)
    with pytest.raises(QcoreError, match="is off"):
        server_path("m.safetensors")
    monkeypatch.setenv("QCORE_WEIGHTS_DIR", str(tmp_path))
    (tmp_path / "m.safetensors").write_bytes(b"x")
    assert server_path("m.safetensors") == (tmp_path / "m.safetensors").resolve()
    for escape in ("../etc/passwd", "/etc/passwd", "sub/../../x"):
        with pytest.raises(QcoreError, match="outside the server's weights folder"):
            server_path(escape)


def test_each_header_is_parsed_once_however_many_tensors(tmp_path, monkeypatch):
    tensors = {f"layers.{i}.weight": torch.randn(2, 3) for i in range(3000)}
    save_file(tensors, tmp_path / "m.safetensors")
    calls = []
    real = safetensors_file.parse_json
    monkeypatch.setattr(safetensors_file, "parse_json", lambda *a: calls.append(a[2]) or real(*a))
    model = read_weights(tmp_path / "m.safetensors")
    for name, W in tensors.items():
        assert torch.equal(model.tensors[name], W)
    assert calls == ["header"]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64, torch.float32])
def test_every_float_dtype_decodes_as_the_library_does(tmp_path, dtype):
    W = (torch.randn(5, 7) * 100).to(dtype)
    save_file({"w": W, "v": W[0].clone()}, tmp_path / "m.safetensors")
    model = read_weights(tmp_path / "m.safetensors")
    reference = load_file(tmp_path / "m.safetensors")
    for name in ("w", "v"):
        assert torch.equal(model.tensors[name], reference[name].float())


def test_a_file_changed_after_opening_is_refused_not_misread(tmp_path):
    save_file({"w": torch.randn(4, 4)}, tmp_path / "m.safetensors")
    model = read_weights(tmp_path / "m.safetensors", name="mine.safetensors")
    save_file({"w": torch.randn(4, 4), "x": torch.randn(2)}, tmp_path / "m.safetensors")
    with pytest.raises(QcoreError, match=r"mine\.safetensors: the file changed on disk since it was opened"):
        model.tensors["w"]


def test_server_shards_inside_the_folder_open_through_links_inside_it(tmp_path, monkeypatch):
    monkeypatch.setenv("QCORE_WEIGHTS_DIR", str(tmp_path))
    (tmp_path / "blobs").mkdir()
    (tmp_path / "m").mkdir()
    save_file({"a.weight": torch.randn(4, 8)}, tmp_path / "blobs" / "one")
    (tmp_path / "m" / "one.safetensors").symlink_to(tmp_path / "blobs" / "one")
    index = {"weight_map": {"a.weight": "one.safetensors"}}
    (tmp_path / "m" / "model.safetensors.index.json").write_text(json.dumps(index))
    for relative in ("m/model.safetensors.index.json", "m"):
        assert list(read_server_weights(relative).tensors) == ["a.weight"]


def test_a_nul_in_a_path_is_refused(tmp_path, monkeypatch):
    with pytest.raises(QcoreError, match=r"a\\0b\.npz: a file name cannot contain a NUL byte"):
        read_weights(str(tmp_path / "a\0b.npz"))
    monkeypatch.setenv("QCORE_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(QcoreError, match="cannot contain a NUL byte"):
        server_path("x\0.safetensors")


@pytest.mark.parametrize(
    ("text", "size"),
    [("123", 123), ("512M", 512 << 20), ("4G", 4 << 30), ("1.5GiB", 3 << 29), (" 2 kb ", 2048), ("1T", 1 << 40)],
)
def test_budget_sizes_parse(text, size):
    assert budget.parse_size(text) == size


def test_the_budget_setting_wins_and_a_bad_one_is_refused(monkeypatch):
    monkeypatch.setenv(budget.BUDGET_ENV, "3G")
    assert budget.memory_budget() == 3 << 30
    monkeypatch.setenv(budget.BUDGET_ENV, "lots")
    with pytest.raises(QcoreError, match="QCORE_MEMORY_BUDGET='lots' is not a size"):
        budget.memory_budget()


def test_the_default_budget_is_available_memory_shared_by_the_sessions(monkeypatch):
    monkeypatch.delenv(budget.BUDGET_ENV, raising=False)
    monkeypatch.setattr(budget, "available_memory", lambda: 8 << 30)
    monkeypatch.delenv(budget.SESSIONS_ENV, raising=False)
    assert budget.memory_budget() == 2 << 30
    monkeypatch.setenv(budget.SESSIONS_ENV, "8")
    assert budget.memory_budget() == 1 << 30
    monkeypatch.setenv(budget.SESSIONS_ENV, "0")
    with pytest.raises(QcoreError, match="QCORE_SESSIONS='0' must be a whole number"):
        budget.memory_budget()


def test_available_memory_respects_an_address_space_limit(monkeypatch):
    mapped = budget._meminfo("VmSize", "/proc/self/status") or 0
    monkeypatch.setattr(budget.resource, "getrlimit", lambda _: (mapped + (256 << 20), budget.resource.RLIM_INFINITY))
    assert budget.available_memory() <= 256 << 20


def test_over_the_budget_names_the_file_the_size_and_the_setting(tmp_path, monkeypatch):
    save_file({"w": torch.randn(64, 64)}, tmp_path / "m.safetensors")
    monkeypatch.setenv(budget.BUDGET_ENV, "20K")  # the header fits, the tensor does not
    with pytest.raises(QcoreError) as info:
        read_weights(tmp_path / "m.safetensors", name="mine.safetensors")
    assert str(info.value) == (
        "mine.safetensors: decodes to 32.0 KiB (its largest tensor 'w', read one at a time), "
        "over this server's 20.0 KiB memory budget (QCORE_MEMORY_BUDGET)"
    )


def test_server_listing_leaves_out_links_that_lead_outside(tmp_path, monkeypatch):
    root, elsewhere = tmp_path / "weights", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    save_file({"w": torch.ones(2, 2)}, root / "in.safetensors")
    save_file({"w": torch.ones(2, 2)}, elsewhere / "secret.safetensors")
    (root / "out.safetensors").symlink_to(elsewhere / "secret.safetensors")
    (root / "alias.safetensors").symlink_to(root / "in.safetensors")
    monkeypatch.setenv("QCORE_WEIGHTS_DIR", str(root))
    assert server_files() == ["alias.safetensors", "in.safetensors"]


def test_a_model_folder_in_the_server_folder_is_one_entry_that_runs(tmp_path, monkeypatch):
    from qcore.formats.readers import server_stamp
    from tests.models.test_hf import small_folder

    root = tmp_path / "weights"
    root.mkdir()
    folder = small_folder(root, {})  # root/model: config.json, model.safetensors, tokenizer.json
    save_file({"w": torch.ones(2, 2)}, root / "loose.safetensors")
    monkeypatch.setenv("QCORE_WEIGHTS_DIR", str(root))
    assert server_files() == ["loose.safetensors", "model/"]  # the folder's own files are not listed on their own
    model = read_server_weights("model/")
    assert model.name == "model" and model.can_run and model.task is not None
    before = server_stamp("model/")
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes() + b" ")
    assert server_stamp("model/") != before  # a file of the folder changed: a new key for every cache
