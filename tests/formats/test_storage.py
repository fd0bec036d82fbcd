"""The Parquet artifact: exact round trips, a plain-reader layout, reproducible bytes, chunking, sizes, atomicity."""

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from qcore.errors import QcoreError
from qcore.formats import storage
from qcore.formats import table as layout
from qcore.formats.packing import packed_nbytes
from qcore.formats.storage import ArtifactWriter, load, save
from qcore.measure import pipeline
from qcore.methods.quant import QuantizedTensor, dequantize
from qcore.methods.rtn import RTNConfig, quantize_rtn
from qcore.models.presets import load_preset

COLUMNS = [
    "name", "encoding", "method", "config", "shape", "dtype", "bits", "group_size", "row_start", "rows",
    "codes", "scale", "scale_dtype", "zero", "zero_dtype", "zero_shared", "codebook",
]  # fmt: skip


def weights(*shape: int, seed: int = 0, std: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * std


def quantized(bits=4, group_size=16, sym=False, shape=(12, 40), std=1.0) -> QuantizedTensor:
    return quantize_rtn(weights(*shape, seed=bits, std=std), RTNConfig(bits=bits, group_size=group_size, sym=sym))


def assert_same_quantized(got: QuantizedTensor, want: QuantizedTensor) -> None:
    assert torch.equal(got.q, want.q)
    assert got.scale.dtype == want.scale.dtype and torch.equal(got.scale, want.scale)
    assert got.zero.dtype == want.zero.dtype and torch.equal(got.zero, want.zero)
    assert (got.bits, got.group_size, got.shape, got.method, got.config) == (
        want.bits, want.group_size, want.shape, want.method, want.config,
    )  # fmt: skip
    assert torch.equal(dequantize(got), dequantize(want))


@pytest.mark.parametrize("sym", (False, True))
@pytest.mark.parametrize("group_size", (0, 16, 24))  # 24 does not divide 40
@pytest.mark.parametrize("bits", (2, 3, 4, 8))
def test_round_trip_via_path(tmp_path, bits, group_size, sym):
    qt = quantized(bits, group_size, sym)
    path = tmp_path / "a.parquet"
    stats, data = save(path, {"w": qt})
    assert data is None and stats.file_bytes == path.stat().st_size
    assert_same_quantized(load(path)["w"], qt)


@pytest.mark.parametrize("sym", (False, True))
@pytest.mark.parametrize("group_size", (0, 16, 24))
@pytest.mark.parametrize("bits", (2, 3, 4, 8))
def test_round_trip_via_bytes(bits, group_size, sym):
    qt = quantized(bits, group_size, sym)
    stats, data = save(None, {"w": qt})
    assert isinstance(data, bytes) and stats.file_bytes == len(data)
    assert_same_quantized(load(data)["w"], qt)


@pytest.mark.parametrize("sym", (False, True))
def test_round_trip_float32_scales(sym):
    qt = quantized(8, 16, sym, std=1e-9)
    assert qt.scale.dtype == torch.float32
    assert_same_quantized(load(save(None, {"w": qt})[1])["w"], qt)


def test_round_trip_conv_kernel_and_single_row():
    conv = quantize_rtn(weights(8, 3, 3, 3), RTNConfig(bits=3))
    row = quantize_rtn(weights(1, 9), RTNConfig(bits=4, sym=True))
    got = load(save(None, {"conv": conv, "row": row})[1])
    assert_same_quantized(got["conv"], conv)
    assert_same_quantized(got["row"], row)
    assert dequantize(got["conv"]).shape == (8, 3, 3, 3)


def test_plain_pyarrow_and_pandas_read_the_file(tmp_path):
    path = tmp_path / "a.parquet"
    save(path, {"w": quantized(), "b": weights(12)})
    table = pq.read_table(path)
    assert table.column_names == COLUMNS
    assert table.column("name").to_pylist() == ["w", "b"]
    assert table.column("encoding").to_pylist() == ["affine", "fp16"]
    frame = pd.read_parquet(path)
    assert list(frame.columns) == COLUMNS
    assert list(frame["shape"].map(list)) == [[12, 40], [12]]
    kv = pq.read_metadata(path).metadata
    assert kv[b"qcore.format_version"] == b"1"
    assert kv[b"qcore.packing"] == layout.BIT_ORDER.encode()


def test_fp16_tensors_round_trip_as_float16():
    bias = weights(37, seed=3)
    norm = torch.tensor([1.0, -2.5, 65504.0, 6e-8, 0.0])
    got = load(save(None, {"bias": bias, "norm": norm, "w": quantized()})[1])
    assert got["bias"].dtype == torch.float16 and torch.equal(got["bias"], bias.half())
    assert torch.equal(got["norm"], norm.half())


def test_same_seed_gives_same_artifact_bytes(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pipeline.run(load_preset("small"), "int2", out=a)
    pipeline.run(load_preset("small"), "int2", out=b)
    assert a.read_bytes() == b.read_bytes()


def test_fresh_models_from_the_same_seed_give_same_bytes():
    build = load_preset.__wrapped__  # bypass the cache: two independently built models
    first, second = build("medium", seed=0), build("medium", seed=0)
    assert first is not second
    data = [pipeline.run(m, "rtn", {"group_size": 64}).artifact for m in (first, second)]
    assert data[0] == data[1]
    assert pipeline.run(build("medium", seed=1), "rtn", {"group_size": 64}).artifact != data[0]


@pytest.mark.parametrize("sym", (False, True))
@pytest.mark.parametrize("bits", (2, 3, 4, 8))
def test_tiny_chunks_span_several_rows_and_round_trip(monkeypatch, bits, sym):
    monkeypatch.setattr(layout, "CHUNK_BYTES", 64)
    qt = quantized(bits, 16, sym, shape=(20, 100))
    bias = weights(100, seed=1)
    data = save(None, {"w": qt, "b": weights(3, 40), "bias": bias})[1]
    table = pq.read_table(io.BytesIO(data))
    names = table.column("name").to_pylist()
    assert names.count("w") > 1 and names.count("b") > 1
    starts = [s for n, s in zip(names, table.column("row_start").to_pylist(), strict=True) if n == "w"]
    assert starts == sorted(starts) and starts[0] == 0
    got = load(data)
    assert_same_quantized(got["w"], qt)
    assert torch.equal(got["b"], weights(3, 40).half())
    assert torch.equal(got["bias"], bias.half())


def test_small_row_groups_still_load(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "ROW_GROUP_BYTES", 100)
    monkeypatch.setattr(layout, "CHUNK_BYTES", 64)
    entries = {f"w{i}": quantized(4, 16, False, shape=(10, 48)) for i in range(3)}
    path = tmp_path / "a.parquet"
    save(path, entries)
    assert pq.ParquetFile(path).metadata.num_row_groups > 1
    got = load(path)
    for name, qt in entries.items():
        assert_same_quantized(got[name], qt)


@pytest.mark.parametrize("codec", ("none", "zstd"))
def test_size_breakdown_adds_up(codec):
    model = load_preset("small")
    result = pipeline.run(model, "int2", codec=codec)
    stats = result.record["breakdown"]
    assert stats["file_bytes"] == len(result.artifact)
    parts = stats["payload_bytes"] + stats["metadata_bytes"] + stats["passthrough_bytes"]
    assert stats["file_bytes"] == parts + stats["container_bytes"] - stats["codec_gain_bytes"]
    assert stats["container_bytes"] > 0
    qts = [v for v in result.quantized.values() if isinstance(v, QuantizedTensor)]
    assert stats["payload_bytes"] == sum(packed_nbytes(qt.numel, 2) for qt in qts)
    assert stats["metadata_bytes"] == sum(qt.scale.numel() * 2 + qt.zero.numel() for qt in qts)
    biases = [t for n, t in model.tensors.items() if n.endswith(".bias")]
    assert stats["passthrough_bytes"] == sum(2 * t.numel() for t in biases)
    if codec == "none":
        assert stats["codec_gain_bytes"] == 0
    else:
        assert stats["codec_gain_bytes"] > 0
        got = load(result.artifact)
        for name, qt in result.quantized.items():
            if isinstance(qt, QuantizedTensor):
                assert torch.equal(dequantize(got[name]), dequantize(qt))


def test_failed_write_leaves_no_temp_file_and_keeps_old_file(tmp_path):
    path = tmp_path / "a.parquet"
    path.write_bytes(b"the previous artifact")
    with pytest.raises(RuntimeError, match="boom"):
        with ArtifactWriter(path) as w:
            w.write("w", quantized())
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet"]
    assert path.read_bytes() == b"the previous artifact"


def test_successful_write_replaces_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a.parquet"
    path.write_bytes(b"the previous artifact")
    save(path, {"w": quantized()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet"]
    assert_same_quantized(load(path)["w"], quantized())


def test_garbage_bytes_are_refused():
    with pytest.raises(QcoreError, match="cannot read the artifact as Parquet"):
        load(b"this is not a parquet file at all")


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(QcoreError, match="cannot read the artifact as Parquet"):
        load(tmp_path / "missing.parquet")


def test_foreign_parquet_is_refused(tmp_path):
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), path)
    with pytest.raises(QcoreError, match="not a qcore artifact of format 1 \\(found format 'none'\\)"):
        load(path)


def test_parquet_with_version_but_missing_columns_is_refused():
    table = pa.table({"name": ["w"]}).replace_schema_metadata(layout.FILE_METADATA)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    with pytest.raises(QcoreError, match="not a qcore artifact: columns .*codes"):
        load(sink.getvalue())
