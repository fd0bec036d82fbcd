"""Architecture catalogue (exact parameter counts, KV cache) and accuracy extrapolation."""

import pytest

from qcore import Policy, QcoreError
from qcore.analysis.accuracy import fit_accuracy, predict_accuracy
from qcore.analysis.archs import ARCHS, arch_from_config, arch_from_params, kv_cache_bytes
from qcore.analysis.sizing import arch_sizes

# Published totals (each model card's parameter count, from its config.json shapes).
PUBLISHED = {
    "Qwen3-0.6B": 596_049_920,
    "Llama-3.2-1B": 1_235_814_400,
    "generic-1B": 1_100_048_384,
    "LLaMA-7B": 6_738_415_616,
    "Llama-2-7B": 6_738_415_616,
    "generic-7B": 6_738_415_616,
    "Llama-3-8B": 8_030_261_248,
    "Mistral-7B": 7_241_732_096,
    "Qwen2.5-7B": 7_615_616_512,
}


@pytest.mark.parametrize(("name", "params"), PUBLISHED.items())
def test_parameter_counts_equal_the_published_totals(name, params):
    assert ARCHS[name].params == params


def test_qwen3_split_by_kind():
    kinds = ARCHS["Qwen3-0.6B"].params_by_kind()
    assert kinds["embedding"] == 151_936 * 1024
    assert kinds["head"] == 0  # tied to the embedding
    assert kinds["attention"] == 28 * (1024 * 2048 * 2 + 1024 * 1024 * 2)
    assert kinds["mlp"] == 28 * 3 * 1024 * 3072
    assert kinds["norm"] == 28 * (2 * 1024 + 2 * 128) + 1024


def test_kv_cache_matches_hand_computation_at_4096_tokens():
    # LLaMA-7B: 2 (K, V) x 32 layers x 32 heads x 128 dims x 4096 tokens x 2 bytes = 2 GiB
    assert kv_cache_bytes(ARCHS["LLaMA-7B"], 4096) == 2 * 32 * 32 * 128 * 4096 * 2 == 2 * 1024**3
    # Llama-3-8B uses grouped-query attention with 8 KV heads: a quarter of that
    assert kv_cache_bytes(ARCHS["Llama-3-8B"], 4096) == 2 * 32 * 8 * 128 * 4096 * 2 == 512 * 1024**2
    assert kv_cache_bytes(ARCHS["Llama-3-8B"], 4096, batch=2, kv_bits=4) == 256 * 1024**2


def test_fp16_embeddings_keep_qwen3_int2_far_below_8x():
    kept = arch_sizes(ARCHS["Qwen3-0.6B"], "int2")
    quantized = arch_sizes(ARCHS["Qwen3-0.6B"], "int2", policy=Policy(quantize_embeddings=True))
    assert kept["compression_ratio"] < 3.0 < 7.0 < quantized["compression_ratio"] < 8.0
    assert kept["bytes_by_kind"]["embedding"] == pytest.approx(151_936 * 1024 * 2, rel=1e-9)


def test_accuracy_extrapolation_has_a_band_and_a_backtest():
    fit = fit_accuracy("int2")
    assert abs(fit.backtest_cosine) < 0.01  # fitted on small+medium, it predicts large closely
    pred = predict_accuracy(fit, ARCHS["LLaMA-7B"], Policy(quantize_head=False))
    assert pred["extrapolated"]
    assert pred["weight_cosine_low"] < pred["weight_cosine"] < pred["weight_cosine_high"]
    assert pred["weight_cosine"] < 0.85  # min-max int2 keeps falling with row length


def test_arch_from_config_and_from_params():
    cfg = {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
           "vocab_size": 32000, "tie_word_embeddings": False}  # fmt: skip
    assert arch_from_config(cfg).params == PUBLISHED["LLaMA-7B"]
    assert abs(arch_from_params(1_000_000_000).params - 1e9) / 1e9 < 0.1
    with pytest.raises(QcoreError, match="config.json lacks vocab_size"):
        arch_from_config({k: v for k, v in cfg.items() if k != "vocab_size"})
    with pytest.raises(QcoreError, match="not valid JSON"):
        arch_from_config("{nope")
