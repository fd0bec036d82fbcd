"""The GPU what-if: the shipped list, and the roofline formulas pinned on LLaMA-7B int2 on an RTX 4090."""

import pytest

from qcore import Policy, QcoreError
from qcore.analysis.archs import get_arch
from qcore.analysis.gpus import GPUS, Overhead, get_gpu, gpu_what_if
from qcore.analysis.sizing import arch_sizes
from qcore.api.specs import EXTRAPOLATE_POLICY

GIB = 1024**3


def test_the_list_has_at_least_twelve_cards_with_positive_figures():
    assert len(GPUS) >= 12
    for name, g in GPUS.items():
        assert name == g.name and g.kind in ("data centre", "workstation", "consumer", "Apple")
        assert g.memory_gib > 0 and g.bandwidth_gbs > 0 and g.tflops > 0, name
    kinds = {g.kind for g in GPUS.values()}
    assert {"data centre", "consumer"} <= kinds


def test_cards_match_their_spec_sheets():
    # a few figures as printed by the vendors (dense tensor TFLOPS: half the "with sparsity" figure)
    assert (GPUS["RTX 4090"].memory_gib, GPUS["RTX 4090"].bandwidth_gbs) == (24, 1008)
    assert (GPUS["H100 SXM"].memory_gib, GPUS["H100 SXM"].bandwidth_gbs, GPUS["H100 SXM"].tflops) == (80, 3350, 989.5)
    assert (GPUS["A100 40GB"].bandwidth_gbs, GPUS["A100 40GB"].tflops) == (1555, 312)
    assert (GPUS["T4"].memory_gib, GPUS["T4"].bandwidth_gbs, GPUS["T4"].tflops) == (16, 320, 65)


def test_names_are_looked_up_loosely_and_unknown_ones_are_refused():
    assert get_gpu("rtx-4090") is GPUS["RTX 4090"] and get_gpu("h100 sxm") is GPUS["H100 SXM"]
    with pytest.raises(QcoreError, match="unknown GPU 'GTX 1080'; choose one of: H200 SXM"):
        get_gpu("GTX 1080")


@pytest.mark.parametrize(("pct", "gib"), [(-1, 0.5), (10, -0.1), (2000, 0)])
def test_an_impossible_overhead_is_refused(pct, gib):
    with pytest.raises(QcoreError, match="overhead must be"):
        Overhead(pct, gib)


def int2_bytes(out: int, n: int) -> int:
    """int2 (per-channel, asymmetric): 2-bit codes, an FP16 scale and a uint8 zero per row."""
    return out * (n * 2 // 8 + 2 + 1)


def test_llama7b_int2_on_an_rtx4090_at_4096_tokens():
    # LLaMA-7B from its config: 32 layers, hidden 4096, MLP 11008, 32 heads (= KV heads) of 128, vocab 32000
    L, h, ff, vocab, ctx = 32, 4096, 11008, 32_000, 4096
    attention = L * 4 * int2_bytes(h, h)
    mlp = L * (2 * int2_bytes(ff, h) + int2_bytes(h, ff))
    fp16 = {"embedding": 2 * vocab * h, "head": 2 * vocab * h, "norm": 2 * (2 * L + 1) * h}  # head kept, as deployed
    read = attention + mlp + fp16["head"] + fp16["norm"]  # a token looks one embedding row up: the table is not read
    kv = 2 * L * 32 * 128 * ctx * 2  # K and V, FP16
    assert kv == 2 * GIB
    arch = get_arch("LLaMA-7B")
    sizes = arch_sizes(arch, "int2", {}, Policy(quantize_head=False))  # the head kept: one FP16 kind more to read
    assert sizes["bytes_by_kind"] == {"attention": attention, "mlp": mlp, **fp16}  # the size model agrees
    weights = sizes["quantized_bytes"]  # the file: tensors + Parquet container

    g = gpu_what_if(arch, weights, sizes["bytes_by_kind"], GPUS["RTX 4090"], ctx)

    assert g["kv_bytes"] == kv and g["read_bytes_per_step"] == read + kv
    needed = weights + kv + 0.10 * weights + 0.5 * GIB
    assert g["needed_bytes"] == pytest.approx(needed, rel=1e-12) and g["fits"] is True
    assert g["headroom_bytes"] == pytest.approx(24 * GIB - needed, rel=1e-12)
    assert g["decode_tokens_per_s"] == pytest.approx(1008e9 / (read + kv), rel=1e-12)
    assert round(g["decode_tokens_per_s"], 2) == 249.92 and g["decode_bound"] == "bandwidth"
    matmul = L * (4 * h * h + 3 * h * ff) + vocab * h  # every linear layer and the head; not the embedding lookup
    flops = 2 * matmul + 2 * L * h * ctx  # Kaplan et al.: 2N + 2 n_layer n_ctx d_attn
    assert g["prefill_flops_per_token"] == flops
    assert g["prefill_tokens_per_s"] == pytest.approx(165.2e12 / flops, rel=1e-12)
    assert round(g["prefill_tokens_per_s"]) == 11562


def test_a_tied_head_is_read_every_token_and_a_longer_context_is_slower():
    arch = get_arch("Qwen3-0.6B")  # tied: the embedding table is the head
    sizes = arch_sizes(arch, "int8", {}, EXTRAPOLATE_POLICY)
    short = gpu_what_if(arch, sizes["quantized_bytes"], sizes["bytes_by_kind"], GPUS["L4"], 1024)
    long = gpu_what_if(arch, sizes["quantized_bytes"], sizes["bytes_by_kind"], GPUS["L4"], 32_768)
    assert short["weight_read_bytes"] == sum(sizes["bytes_by_kind"].values())
    assert long["decode_tokens_per_s"] < short["decode_tokens_per_s"]
    assert long["prefill_tokens_per_s"] < short["prefill_tokens_per_s"]


def test_a_model_that_does_not_fit_gets_no_speed_and_a_big_batch_meets_the_compute_roof():
    arch = get_arch("LLaMA-7B")
    sizes = arch_sizes(arch, "int8", {}, EXTRAPOLATE_POLICY)
    fp16_bytes, fp16_kinds = sizes["fp16_bytes"], sizes["fp16_bytes_by_kind"]
    g = gpu_what_if(arch, fp16_bytes, fp16_kinds, GPUS["RTX 4080"], 4096)  # 12.55 GiB of FP16 weights on 16 GiB
    assert not g["fits"] and g["headroom_bytes"] < 0
    assert g["decode_tokens_per_s"] is None and g["prefill_tokens_per_s"] is None
    big = gpu_what_if(arch, fp16_bytes, fp16_kinds, GPUS["H200 SXM"], 16, batch=4096, kv_bits=4)
    assert big["fits"] and big["decode_bound"] == "compute"
    roof = 989.5e12 / (2 * (32 * (4 * 4096**2 + 3 * 4096 * 11008) + 32_000 * 4096) + 4 * 32 * 4096 * 16)
    assert big["decode_tokens_per_s"] == pytest.approx(roof, rel=1e-12)
