"""Guard rails before a run (nothing selected, mixed below its floor), the whole-file theoretical ratio, and progress
that names the step now running."""

from dataclasses import replace

import pytest
import torch
from safetensors.torch import save_file

from qcore import Model, Policy, QcoreError, load_model, run
from qcore.formats.readers import read_weights
from qcore.measure import pipeline
from qcore.measure.feasible import mixed_floor_bpw, run_blocker
from qcore.methods import mixed
from qcore.methods.registry import config_dict


def small_lm() -> Model:
    g = torch.Generator().manual_seed(0)
    tensors = {
        "embed.weight": torch.randn(64, 48, generator=g),
        "mlp.up.weight": torch.randn(96, 48, generator=g),
        "mlp.up.bias": torch.randn(96, generator=g),
        "lm_head.weight": torch.randn(64, 48, generator=g),
    }
    return Model("tiny", tensors, head=("lm_head.weight",), embeddings=("embed.weight",))


def test_an_include_pattern_matching_nothing_blocks_the_run_and_says_what_is_kept():
    model = small_lm()
    b = run_blocker(model, "int2", {}, Policy(include="no_such_tensor"))
    assert b is not None and b.reason == "no_tensors"
    assert b.values == {"1d": 1, "embedding": 1, "not_included": 2}  # every tensor accounted for
    assert sum(b.values.values()) == len(model.tensors)
    assert run_blocker(model, "int2", {}, Policy(include="mlp")) is None


def test_the_mixed_floor_is_where_mixed_itself_starts_refusing():
    model = load_model("small")
    floor = mixed_floor_bpw(model, Policy(), mixed.MixedConfig())
    below, above = round(floor - 0.01, 3), round(floor + 0.05, 3)
    b = run_blocker(model, "mixed", {"target_bpw": below}, Policy())
    assert b is not None and b.reason == "below_floor"
    assert b.values["floor"] == pytest.approx(floor, abs=0.01)  # the config label differs by a few bytes
    with pytest.raises(QcoreError) as err:
        run(model, "mixed", {"target_bpw": below})
    assert str(err.value) == b.message  # the same sentence, before and after quantizing
    assert run_blocker(model, "mixed", {"target_bpw": above}, Policy()) is None
    assert run(model, "mixed", {"target_bpw": above}).record["bpw"] >= floor


def test_the_floor_counts_the_same_file_as_mixed_at_min_bits():
    """The placeholder codes and scales make a file of exactly the bytes of the real all-min_bits allocation."""
    model = load_model("small")
    selected = {n: W for n, W in model.tensors.items() if Policy().selects(n, W, model)}
    cfg = mixed.MixedConfig(target_bpw=3.25)
    real = {}
    for n, W in selected.items():
        c = mixed._candidates(W, cfg)
        real[n] = mixed._assemble(c, torch.full((W.shape[0],), 2, dtype=torch.uint8))
    floor = mixed.floor_items({n: tuple(W.shape) for n, W in selected.items()}, 2)
    files = [
        pipeline.count_bytes({n: items[n].stamped("mixed", config_dict(cfg)) if n in items else W
                              for n, W in model.tensors.items()})
        for items in (real, floor)
    ]  # fmt: skip
    assert files[0] == files[1]
    assert mixed_floor_bpw(model, Policy(), cfg) == 8 * files[1] / model.params


def test_a_lazily_read_model_is_floored_without_reading_the_kept_tensors(tmp_path):
    model = small_lm()
    path = tmp_path / "tiny.safetensors"
    save_file(model.tensors, path)
    lazy = read_weights(path)
    assert not isinstance(lazy.tensors, dict)
    cfg = mixed.MixedConfig(min_bits=3)
    eager = replace(lazy, tensors=dict(model.tensors))
    assert mixed_floor_bpw(lazy, Policy(), cfg) == mixed_floor_bpw(eager, Policy(), cfg)


def test_the_whole_file_theoretical_ratio_counts_the_fp16_tensors_kept():
    model = small_lm()
    everything = run(model, "int2", policy=Policy(quantize_embeddings=True)).record
    head_kept = run(model, "int2", policy=Policy(quantize_head=False)).record
    for rec in (everything, head_kept):
        b = rec["breakdown"]
        assert rec["theoretical_file_ratio"] == 2 * rec["params"] / (b["payload_bytes"] + b["passthrough_bytes"])
        assert rec["compression_ratio"] <= rec["theoretical_file_ratio"] <= rec["theoretical_ratio"]
    assert head_kept["theoretical_ratio"] == everything["theoretical_ratio"] == 8.0  # codes alone: 2 bits
    assert head_kept["theoretical_file_ratio"] < everything["theoretical_file_ratio"]  # the kept tensors cost


def test_a_run_that_would_quantize_nothing_is_refused_with_the_reason():
    with pytest.raises(QcoreError, match="selects no tensor to quantize .* nothing would change"):
        run(small_lm(), "int2", policy=Policy(include="no_such_tensor"))


class Recorder:
    """A progress callback that remembers every report, and what the latest one said at any moment."""

    def __init__(self):
        self.calls: list[tuple[int, int, str]] = []

    def __call__(self, done: int, total: int, what: str) -> None:
        self.calls.append((done, total, what))

    @property
    def now(self) -> str:
        return self.calls[-1][2] if self.calls else ""


def test_each_tensor_is_named_before_it_is_quantized_and_measuring_is_the_last_step(monkeypatch):
    model = load_model("digits-small")
    progress, seen = Recorder(), []
    quantize_one = pipeline._quantize_one

    def spy(method, W, cfg, name, H, inner):
        seen.append((name, progress.now))
        return quantize_one(method, W, cfg, name, H, inner)

    monkeypatch.setattr(pipeline, "_quantize_one", spy)
    task = model.task
    judged = replace(model, task=lambda ref, got: seen.append(("task", progress.now)) or task(ref, got))
    run(judged, "rtn", {"bits": 4}, progress=progress)
    assert [label for name, label in seen if name != "task"] == [name for name, _ in seen if name != "task"]
    assert seen[-1] == ("task", pipeline.MEASURING)
    assert progress.calls[-1] == (len(model.tensors), len(model.tensors), pipeline.MEASURING)


def test_qat_names_each_step_before_it_runs():
    model = load_model("digits-small")
    progress, seen = Recorder(), []
    loss = model.loss
    training = replace(model, loss=lambda tensors, step: seen.append(progress.now) or loss(tensors, step))
    run(training, "seq", {"qat_steps": 3}, progress=progress)
    assert [s.split(",")[0] for s in seen] == ["QAT step 1 of 3", "QAT step 2 of 3", "QAT step 3 of 3"]
    assert "loss" in seen[1] and "loss" not in seen[0]  # from step 2 on, the last step's loss


def test_mixed_names_each_tensor_before_trying_its_widths(monkeypatch):
    model = load_model("small")
    progress, seen = Recorder(), []
    candidates = mixed._candidates
    monkeypatch.setattr(mixed, "_candidates", lambda W, cfg: seen.append(progress.now) or candidates(W, cfg))
    run(model, "mixed", {"target_bpw": 5.0}, progress=progress)
    selected = [n for n, W in model.tensors.items() if W.dim() == 2]
    assert [s.split(":")[0] for s in seen] == selected
