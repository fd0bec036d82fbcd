"""The size model against written artifacts: every method, exact per tensor and within 0.5% per file."""

import pytest
import torch

from qcore import METHODS, Policy, get_method, load_preset, run
from qcore.analysis.sizing import model_entries, predict_size, tensor_bytes
from qcore.formats.storage import ArtifactWriter
from qcore.formats.table import layout_of
from qcore.methods.coded import CodedTensor
from qcore.methods.quant import QuantizedTensor

pytestmark = pytest.mark.usefixtures("one_thread")
VARIANTS = [(m, {}) for m in METHODS if m != "mixed"] + [
    ("rtn", {"bits": 3, "group_size": 96, "sym": True}),
    ("nf4", {"double_quant": True}),
    ("nf4", {"group_size": 0}),
    ("hqq", {"bits": 2, "group_size": 32}),
    ("seq", {"bits": 3, "group_size": 0}),
    ("rtn", {"bits": 2, "group_size": 64, "clip": True, "rotate": True}),
    ("gptq", {"bits": 3, "rotate": True}),
    ("e8p", {"group_size": 64}),
    ("e8p", {"rotate": False}),
    ("trellis", {"L": 6}),
]


def written(item) -> tuple[int, int]:
    """(payload, metadata) bytes the artifact writer counts for one quantized tensor."""
    with ArtifactWriter(None, count_only=True) as w:
        w.write("t", item)
    return w.stats.payload_bytes, w.stats.metadata_bytes


@pytest.mark.parametrize(("method", "options"), VARIANTS, ids=lambda v: str(v))
@pytest.mark.parametrize("shape", [(96, 256), (33, 200), (2048, 64)])
def test_tensor_bytes_equal_what_the_writer_counts(method, options, shape):
    m = get_method(method)
    W = torch.randn(*shape, generator=torch.Generator().manual_seed(shape[0])) * 0.02
    qt = m.quantize(W, m.make_config(**options), H=hessian(shape[1]) if m.needs_calibration else None)
    assert isinstance(qt, QuantizedTensor | CodedTensor)
    assert tensor_bytes(method, options, shape) == written(qt)


def hessian(n: int) -> torch.Tensor:
    """2 X^T X / N of correlated inputs with one dead column: a Hessian like a real layer's, not the identity."""
    g = torch.Generator().manual_seed(n)
    X = torch.randn(4 * n, n, generator=g) @ (torch.eye(n) + 0.3 * torch.randn(n, n, generator=g) / n**0.5)
    X[:, 1] = 0
    return 2 * X.T @ X / len(X)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"bits": 2, "group_size": 64},
        {"bits": 8, "group_size": 0, "sym": True},
        {"bits": 3, "sym": True},
        {"rotate": True, "act_order": False},
        {"group_size": 32, "act_order": False, "damp": 0.5},
    ],  # fmt: skip
    ids=str,
)
@pytest.mark.parametrize("shape", [(40, 256), (7, 200)])
def test_a_storage_twin_lays_out_exactly_as_its_method(options, shape):
    """Sizing reads gptq's layout from rtn's: on a real Hessian every stored array has the same shape and dtype."""
    m = get_method("gptq")
    cfg = m.make_config(**options)
    W = torch.randn(*shape, generator=torch.Generator().manual_seed(1)) * 0.02
    twin, twin_options = m.storage_twin(cfg)
    got = m.quantize(W, cfg, H=hessian(shape[1]))
    ref = get_method(twin).quantize(W, get_method(twin).make_config(**twin_options))
    assert layout_of(got) == layout_of(ref) and written(got) == written(ref)


@pytest.mark.parametrize("preset", ("small", "medium", "large"))
@pytest.mark.parametrize(("method", "options"), VARIANTS, ids=lambda v: str(v))
def test_predicted_file_matches_the_written_one(preset, method, options):
    model = load_preset(preset)
    rec = run(model, method, options, keep=False).record
    entries = model_entries(model)
    predicted = predict_size(entries, method, options, Policy())
    assert predicted["payload_bytes"] == rec["breakdown"]["payload_bytes"]
    assert predicted["metadata_bytes"] == rec["breakdown"]["metadata_bytes"]
    # the container (Parquet framing) is estimated on a skeleton file: within 0.5%, or 64 bytes on tiny files
    assert abs(predicted["file_bytes"] - rec["quantized_bytes"]) < max(0.005 * rec["quantized_bytes"], 64)
    fp16 = predict_size(entries, None)["file_bytes"]
    assert abs(fp16 - rec["fp16_bytes"]) / rec["fp16_bytes"] < 0.005


@pytest.mark.parametrize("target", (2.5, 3.0))
def test_a_budget_method_is_sized_at_its_budget_and_its_file_stays_under_it(target):
    model = load_preset("large")
    rec = run(model, "mixed", {"target_bpw": target}, keep=False).record
    predicted = predict_size(model_entries(model), "mixed", {"target_bpw": target}, Policy())
    assert rec["bpw"] <= target
    assert abs(predicted["file_bytes"] - rec["quantized_bytes"]) / rec["quantized_bytes"] < 0.01
