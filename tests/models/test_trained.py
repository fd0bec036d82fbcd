"""Trained models: sizes, loading, the capture hook, task metrics, quantized runs and a training smoke test."""

import dataclasses
import importlib.util
import json
import math

import numpy as np
import pytest
import torch
from safetensors import safe_open

from qcore import Policy, QcoreError, QuantizedTensor, dequantize, run
from qcore.models import charlm as C
from qcore.models import digits as D
from qcore.models import train as TR
from qcore.models import trained as T

needs_sklearn = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="needs scikit-learn")
DIGITS = ["digits-small", "digits-medium", "digits-large"]
PARAMS = {"digits-small": 9_610, "digits-medium": 85_002, "digits-large": 1_126_410}


def dequantized(quantized: dict) -> dict[str, torch.Tensor]:
    return {k: dequantize(v) if isinstance(v, QuantizedTensor) else v for k, v in quantized.items()}


@pytest.fixture(scope="module")
def charlm():
    return T.load_trained("charlm")


@pytest.fixture(scope="module")
def charlm_runs(charlm):
    return {m: run(charlm, m, opts) for m, opts in [("int8", None), ("rtn", {"bits": 4, "group_size": 128})]}


def test_listing_names_every_config_with_a_description():
    assert list(T.TRAINED) == list(T.CONFIGS) == [*DIGITS, "charlm"]
    assert all(T.TRAINED.values())


def test_unknown_name_is_a_qcore_error():
    with pytest.raises(QcoreError, match="unknown trained model 'nope'"):
        T.load_trained("nope")


@needs_sklearn
@pytest.mark.parametrize("name", DIGITS)
def test_digits_model_loads_with_expected_sizes_and_accuracy(name):
    model = T.load_trained(name)
    task = model.task
    assert model.params == PARAMS[name]
    assert list(model.tensors) == D.digits_names(T.CONFIGS[name])
    assert all(t.dtype == torch.float32 for t in model.tensors.values())
    assert model.eval_inputs.shape == (500, 64) and model.calib_inputs.shape == (1297, 64)
    assert model.head == (f"fc{len(T.CONFIGS[name].widths) - 1}.weight",) and model.embeddings == ()
    m = task(model.tensors, model.tensors)
    assert m["top1"] >= 0.95 and m["top1"] == m["top1_ref"] and m["logit_mse"] == 0.0
    assert m["nll"] == m["nll_ref"] > 0 and m["same_class"] == 1.0
    assert T.load_trained(name) is model  # cached


@needs_sklearn
def test_digits_split_is_disjoint_and_inputs_are_standardised():
    cfg = T.CONFIGS["digits-small"]
    train, test = D.digits_split(cfg)
    assert len(set(train.tolist()) | set(test.tolist())) == 1797 and len(test) == 500
    model = T.load_trained("digits-small")
    mean = model.calib_inputs.mean(0)
    assert mean.abs().max() < 1e-4  # training statistics standardise the training rows exactly


def test_charlm_size_matches_config(charlm):
    model = charlm
    cfg = T.CONFIGS["charlm"]
    d, L, V, T_ = cfg.d_model, cfg.n_layer, cfg.vocab_size, cfg.block_size
    assert model.params == 12 * d * d * L + 4 * d * L + 2 * d + 2 * V * d + T_ * d
    assert 1_000_000 <= model.params <= 3_000_000
    assert list(model.tensors) == C.charlm_names(cfg)
    assert model.head == ("lm_head.weight",) and model.embeddings == ("tok_emb.weight", "pos_emb.weight")
    assert model.eval_inputs.shape == (cfg.eval_windows, T_) and model.calib_inputs.shape == (cfg.calib_windows, T_)


def test_charlm_fp32_metrics_are_sane(charlm):
    model, task = charlm, charlm.task
    m = task(model.tensors, model.tensors)
    assert set(m) == {"perplexity", "perplexity_ref", "kl", "same_top"}
    assert m["perplexity"] == m["perplexity_ref"] < 8  # the vocabulary has 96 characters
    assert m["kl"] == pytest.approx(0.0, abs=1e-12) and m["same_top"] == 1.0
    assert task(model.tensors, model.tensors) == m  # deterministic


def test_charlm_capture_hook_records_every_linear_input(charlm):
    model = charlm
    capture = {}
    x = model.eval_inputs[:2]  # (2, T)
    with torch.no_grad():
        logits = model.forward(model.tensors, x, capture)
    assert logits.shape == (2, x.shape[1], T.CONFIGS["charlm"].vocab_size)
    linear = [k for k, W in model.tensors.items() if W.dim() == 2 and k not in model.embeddings]
    assert list(capture) == linear
    for name in linear:
        assert capture[name].shape == (2, x.shape[1], model.tensors[name].shape[1])


@needs_sklearn
def test_digits_capture_hook_records_every_linear_input():
    model = T.load_trained("digits-medium")
    capture = {}
    model.forward(model.tensors, model.eval_inputs, capture)
    weights = [k for k in model.tensors if k.endswith(".weight")]
    assert list(capture) == weights
    assert all(capture[k].shape == (500, model.tensors[k].shape[1]) for k in weights)


def test_charlm_is_causal(charlm):
    model = charlm
    x = model.eval_inputs[:1].clone()  # (1, T)
    with torch.no_grad():
        a = model.forward(model.tensors, x)
        x[0, 50] = (x[0, 50] + 1) % T.CONFIGS["charlm"].vocab_size
        b = model.forward(model.tensors, x)
    assert torch.equal(a[0, :50], b[0, :50]) and not torch.equal(a[0, 50:], b[0, 50:])


@needs_sklearn
def test_digits_cross_entropy_and_agreement_match_plain_formulas():
    """nll is the mean of -log softmax at the true class; same_class counts images whose argmax is the reference's."""
    model = T.load_trained("digits-medium")
    approx = dequantized(run(model, "int2").quantized)
    m = model.task(model.tensors, approx)
    x, labels = (a.double().numpy() for a in model.task.args)  # the held-out images and their classes
    labels = labels.astype(np.int64)

    def logits(tensors):  # fc1 .. fc3, ReLU between
        h = x
        for i in (1, 2, 3):
            h = h @ tensors[f"fc{i}.weight"].double().numpy().T + tensors[f"fc{i}.bias"].double().numpy()
            h = np.maximum(h, 0) if i < 3 else h
        return h

    ref, got = logits(model.tensors), logits(approx)
    z = got - got.max(1, keepdims=True)
    nll = float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(labels)), labels]))
    assert m["nll"] == pytest.approx(nll, rel=1e-6) and m["nll"] != m["nll_ref"]
    assert m["same_class"] == float(np.mean(got.argmax(1) == ref.argmax(1))) < 1.0


@needs_sklearn
@pytest.mark.parametrize("name", DIGITS)
def test_digits_survive_int8_and_rtn4(name):
    model = T.load_trained(name)
    task = model.task
    int8 = task(model.tensors, dequantized(run(model, "int8").quantized))
    assert abs(int8["top1"] - int8["top1_ref"]) <= 0.01 and int8["logit_mse"] > 0
    rtn4 = task(model.tensors, dequantized(run(model, "rtn", {"bits": 4, "group_size": 128}).quantized))
    assert rtn4["top1"] >= 0.9 and rtn4["logit_mse"] > int8["logit_mse"]


def test_charlm_int8_keeps_perplexity_and_rtn4_costs_more(charlm, charlm_runs):
    model, task = charlm, charlm.task
    int8 = task(model.tensors, dequantized(charlm_runs["int8"].quantized))
    assert int8["perplexity"] == pytest.approx(int8["perplexity_ref"], rel=0.01)
    assert int8["same_top"] > 0.98 and 0 < int8["kl"] < 0.01
    rtn4 = task(model.tensors, dequantized(charlm_runs["rtn"].quantized))
    assert rtn4["kl"] > int8["kl"] and rtn4["same_top"] < int8["same_top"]
    assert math.isfinite(rtn4["perplexity"]) and rtn4["perplexity"] < 2 * rtn4["perplexity_ref"]


def test_lm_metrics_in_chunks_equal_one_pass_over_every_window(monkeypatch):
    """The chunked metrics (one window, then as many as fit LOGIT_CHUNK_BYTES) against the plain formulas over
    the whole batch at once."""
    torch.manual_seed(0)
    B, T, V = 7, 5, 11
    x, targets = torch.randint(0, V, (B, T)), torch.randint(0, V, (B, T))
    table = {"ref": torch.randn(V, V), "got": torch.randn(V, V)}
    forward = lambda tensors, xs: tensors["w"][xs]  # noqa: E731  (b, T) -> (b, T, V) logits
    ref_t, got_t = {"w": table["ref"]}, {"w": table["got"]}
    ref = torch.log_softmax(table["ref"][x].double(), -1)
    got = torch.log_softmax(table["got"][x].double(), -1)
    expected = {
        "perplexity": math.exp(-got.gather(-1, targets[..., None]).mean()),
        "perplexity_ref": math.exp(-ref.gather(-1, targets[..., None]).mean()),
        "kl": float((ref.exp() * (ref - got)).sum(-1).mean()),
        "same_top": float((ref.argmax(-1) == got.argmax(-1)).double().mean()),
    }
    for chunk in (8 * T * V * 2, 2**30):  # two windows per chunk after the first; all at once
        monkeypatch.setattr(C, "LOGIT_CHUNK_BYTES", chunk)
        out = C.lm_metrics(forward, x, targets, ref_t, got_t)
        assert out.keys() == expected.keys()
        assert all(math.isclose(out[k], expected[k], rel_tol=1e-12) for k in out), (out, expected)


def test_the_record_reports_the_task_on_the_dequantized_weights(charlm, charlm_runs):
    quantized = charlm_runs["rtn"].quantized
    assert charlm_runs["rtn"].record["task"] == charlm.task(charlm.tensors, dequantized(quantized))


def test_gptq_quantizes_embedding_tables_by_rounding_on_its_own_grid(charlm):
    """A lookup mixes no columns: GPTQ's Hessian there is the identity, so its codes are RTN's on the same grid."""
    model = charlm
    opts = {"bits": 4, "group_size": 64}
    res = run(model, "gptq", opts, Policy(quantize_embeddings=True), keep=True)
    rtn = run(model, "rtn", opts, Policy(quantize_embeddings=True), keep=True)
    for name in model.embeddings:
        g, r = res.quantized[name], rtn.quantized[name]
        assert isinstance(g, QuantizedTensor) and g.method == "gptq"
        assert torch.equal(g.q, r.q) and torch.equal(g.scale, r.scale) and torch.equal(g.zero, r.zero), name
    assert res.record["task"]["perplexity"] < 1.1 * res.record["task"]["perplexity_ref"]


def test_checkpoints_hold_float16_weights_and_their_config():
    for name, cfg in T.CONFIGS.items():
        with safe_open(str(T.checkpoint_path(name)), framework="pt") as f:
            assert set(f.keys()) == set(T.expected_shapes(cfg))
            assert all(f.get_slice(k).get_dtype() == "F16" for k in f.keys())
            assert f.metadata()["config"] == T.config_json(cfg)


def test_corpus_is_ascii_in_the_alphabet_and_split_90_10():
    ids = C.corpus_ids()
    train, held = C.corpus_split()
    assert len(ids) > 500_000 and ids.max() < len(C.VOCAB) and ids.min() >= 0
    assert len(train) == int(0.9 * len(ids)) and len(train) + len(held) == len(ids)


def test_charlm_training_smoke_loss_falls():
    cfg = dataclasses.replace(
        T.CONFIGS["charlm"], d_model=32, n_layer=1, n_head=2, steps=40, batch_size=8, warmup=5, eval_windows=2
    )
    _, meta, losses = TR.train_charlm(cfg)
    assert len(losses) == 40 and sum(losses[-5:]) / 5 < losses[0] - 0.5
    assert "perplexity" in meta["stats"]


@needs_sklearn
def test_digits_training_smoke_loss_falls():
    _, meta, losses = TR.train_digits(D.DigitsConfig(hidden=(16,), epochs=3, lr=1e-2))
    assert len(losses) == 3 * 21  # ceil(1297 / 64) steps per epoch
    assert sum(losses[-21:]) / 21 < sum(losses[:21]) / 21 - 0.5
    assert len(json.loads(meta["input.mean"])) == 64


@needs_sklearn
def test_a_missing_checkpoint_is_an_error_that_says_how_to_train_it(tmp_path, monkeypatch):
    monkeypatch.setattr(T, "CHECKPOINT_DIR", tmp_path)
    T._load.cache_clear()
    try:
        with pytest.raises(QcoreError, match="python -m qcore.models.train digits-small"):
            T.load_trained("digits-small")
    finally:
        T._load.cache_clear()


def test_training_writes_a_checkpoint_that_loads(tmp_path, monkeypatch):
    monkeypatch.setattr(T, "CHECKPOINT_DIR", tmp_path)
    monkeypatch.setitem(T.CONFIGS, "digits-small", D.DigitsConfig(hidden=(16,), epochs=2))
    T._load.cache_clear()
    calls = []
    try:
        TR.train_and_save("digits-small", progress=lambda *a: calls.append(a))
        model = T.load_trained("digits-small")
    finally:
        T._load.cache_clear()
    assert (tmp_path / "digits-small.safetensors").exists() and not list(tmp_path.glob("*.tmp"))
    assert calls[-1][:2] == (42, 42) and model.tensors["fc1.weight"].shape == (16, 64)
    assert 0.0 <= model.task(model.tensors, model.tensors)["top1"] <= 1.0


def test_save_checkpoint_round_trips_float16(tmp_path):
    W = torch.randn(3, 5)
    TR.save_checkpoint(tmp_path / "x.safetensors", {"w": W}, {"k": "v"})
    with safe_open(str(tmp_path / "x.safetensors"), framework="pt") as f:
        assert torch.equal(f.get_tensor("w"), W.half()) and f.metadata() == {"k": "v"}


def test_model_loss_is_a_deterministic_differentiable_training_loss(charlm):
    model = charlm
    tensors = {k: v.clone().requires_grad_() for k, v in model.tensors.items()}
    loss = model.loss(tensors, 0)
    loss.backward()
    assert loss.dim() == 0 and 0 < loss.item() < 3 and tensors["blocks.0.attn.qkv.weight"].grad.abs().sum() > 0
    assert model.loss(model.tensors, 0).item() == loss.item() != model.loss(model.tensors, 1).item()
