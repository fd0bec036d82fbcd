"""A GPU what-if: does a quantized architecture fit on a card, and how fast could it decode and prefill?

The shipped list (GPUS) holds each card's memory, peak memory bandwidth and dense FP16/BF16 tensor throughput,
from the vendors' own spec sheets and architecture whitepapers:
- NVIDIA data-centre datasheets (H200, H100, A100, L40S, L4, A10, T4, V100) print tensor TFLOPS "with
  sparsity"; the dense figure is half of it.
- NVIDIA's Ada and Ampere whitepapers (GeForce and RTX professional appendices) give dense FP16 tensor TFLOPS with
  FP32 accumulate, the rate PyTorch's half-precision matmuls run at; GeForce cards run it at half their
  FP16-accumulate peak. Where a card is missing from them, the figure is derived from its SM count and boost clock
  and the note says so.
- AMD's MI300X datasheet; Apple's M2 Ultra page (memory, bandwidth; Apple prints no TFLOPS, see the note).
Memory is the vendor's nominal figure in GiB; usable memory is a little lower (ECC, driver reservations), which the
overhead allowance's fixed part is meant to cover.

The estimates are rooflines, stated as bounds (batch sequences decoding together, `context` tokens in the cache):
    memory needed  = weight bytes + KV cache + overhead (pct % of the weights + fixed GiB: a stated allowance)
    decode tok/s  <= batch x bandwidth / (weight bytes read per token + KV cache bytes)   (memory-bandwidth-bound)
                     and <= TFLOPS / decode FLOPs per token (compute); the smaller one is the bound
    prefill tok/s ~= TFLOPS / (2 x matmul params + 2 x layers x q width x context)      (compute-bound, at peak)
A token reads every weight once except the embedding table, which it looks up (one row) unless the head shares it.
The prefill FLOPs are C_forward of Kaplan et al. 2020 (Table 1): 2 per matmul weight, plus attention scores and
values over a prompt of `context` tokens (mean position context / 2, 4 FLOPs per q-width and position).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import QcoreError
from ..format import GIB
from .archs import Arch, kv_cache_bytes


@dataclass(frozen=True)
class GPU:
    """One card of the shipped list."""

    name: str
    memory_gib: float  # nominal memory, GiB
    bandwidth_gbs: float  # peak memory bandwidth, GB/s (10^9 bytes per second)
    tflops: float  # dense FP16/BF16 tensor TFLOPS (10^12 FLOP/s), FP32 accumulate, no sparsity
    kind: str  # "data centre", "workstation", "consumer" or "Apple"
    note: str = ""  # where a figure is derived rather than printed on the spec sheet


GPUS: dict[str, GPU] = {
    g.name: g
    for g in (
        GPU("H200 SXM", 141, 4800, 989.5, "data centre"),
        GPU("H100 SXM", 80, 3350, 989.5, "data centre"),
        GPU("H100 PCIe", 80, 2000, 756.5, "data centre"),
        GPU("A100 80GB SXM", 80, 2039, 312, "data centre"),
        GPU("A100 40GB", 40, 1555, 312, "data centre"),
        GPU("L40S", 48, 864, 362.05, "data centre"),
        GPU("L4", 24, 300, 121, "data centre"),
        GPU("A10", 24, 600, 125, "data centre"),
        GPU("T4", 16, 320, 65, "data centre"),
        GPU("V100 SXM2 32GB", 32, 900, 125, "data centre"),
        GPU("AMD MI300X", 192, 5300, 1307.4, "data centre"),
        GPU("RTX 6000 Ada", 48, 960, 364.2, "workstation"),
        GPU("RTX A6000", 48, 768, 154.8, "workstation"),
        GPU("RTX 4090", 24, 1008, 165.2, "consumer"),
        GPU("RTX 4080", 16, 716.8, 97.5, "consumer"),
        GPU("RTX 3090", 24, 936, 71, "consumer"),
        GPU("RTX 4060 Ti 16GB", 16, 288, 44.1, "consumer",
            "TFLOPS derived: 34 SMs x 4 tensor cores x 256 FLOP/clock x 2.535 GHz, halved for FP32 accumulate"),
        GPU("Apple M2 Ultra", 192, 800, 27.2, "Apple",
            "TFLOPS derived: 76 GPU cores x 128 ALUs x 2 FLOP x 1.398 GHz (FP16 runs at the FP32 rate); macOS lets "
            "the GPU wire about 75% of unified memory by default"),
    )
}  # fmt: skip


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def get_gpu(name: str) -> GPU:
    """A card of the shipped list by name, ignoring case, spaces and punctuation ("rtx-4090" is "RTX 4090")."""
    found = {_key(g.name): g for g in GPUS.values()}.get(_key(name))
    if found is None:
        raise QcoreError(f"unknown GPU '{name}'; choose one of: {', '.join(GPUS)}")
    return found


@dataclass(frozen=True)
class Overhead:
    """Memory beyond weights and KV cache: activations, allocator slack, the CUDA context and the framework.

    A rule of thumb the user sets, not a measurement: pct % of the weight bytes plus fixed_gib GiB.
    The default (10% + 0.5 GiB) covers a batch-1 decode's activations and a CUDA context of a few hundred MiB.
    """

    pct: float = 10.0  # % of the weight bytes
    fixed_gib: float = 0.5  # GiB, whatever the model

    def __post_init__(self):
        if not (0 <= self.pct <= 1000 and 0 <= self.fixed_gib <= 1024):
            raise QcoreError(f"overhead must be 0-1000 % and 0-1024 GiB, got {self.pct:g} % and {self.fixed_gib:g}")

    def bytes_for(self, weight_bytes: float) -> float:
        return weight_bytes * self.pct / 100 + self.fixed_gib * GIB


def matmul_params(arch: Arch) -> int:
    """Weights a token multiplies by: every 2-D tensor but the embedding table (a lookup), which counts where the
    head shares it."""
    looked_up = "" if arch.tied else "embedding"
    return sum(math.prod(t.shape) for t in arch.tensors() if len(t.shape) == 2 and t.kind != looked_up)


def bytes_read_per_token(arch: Arch, bytes_by_kind: dict[str, int]) -> int:
    """Weight bytes a decoded token reads: all of them but an untied embedding table (one row of it, counted 0)."""
    return sum(v for k, v in bytes_by_kind.items() if arch.tied or k != "embedding")


def attention_flops(arch: Arch, positions: float) -> float:
    """FLOPs of attention scores and weighted values for one token over `positions` cached tokens, all layers."""
    return 4 * arch.layers * arch.heads * arch.head_dim * positions


def memory_needed(weight_bytes: float, kv_bytes: int, overhead: Overhead) -> dict:
    """Weights + KV cache + the overhead allowance, in bytes."""
    extra = overhead.bytes_for(weight_bytes)
    return {"weights_bytes": weight_bytes, "kv_bytes": kv_bytes, "overhead_bytes": extra,
            "needed_bytes": weight_bytes + kv_bytes + extra}  # fmt: skip


def gpu_what_if(
    arch: Arch,
    weight_bytes: int,
    bytes_by_kind: dict[str, int],
    gpu: GPU,
    context: int,
    batch: int = 1,
    kv_bits: int = 16,
    overhead: Overhead = Overhead(),
) -> dict:
    """Fit and roofline speeds of one weight variant of `arch` on `gpu` (see the module docstring).

    weight_bytes: the artifact's bytes (what memory holds); bytes_by_kind: its tensors' bytes by kind.
    Returns bytes (weights, KV cache, overhead, needed, capacity, headroom), fits, bytes read per decode step (one
    token per sequence: at batch 1, per token), prefill FLOPs per token, and tokens/s: decode (an upper bound, and which roof binds it) and prefill (a compute-bound estimate at
    peak throughput); both None where the model does not fit.
    """
    mem = memory_needed(weight_bytes, kv_cache_bytes(arch, context, batch, kv_bits), overhead)
    capacity = gpu.memory_gib * GIB
    fits = mem["needed_bytes"] <= capacity
    read = bytes_read_per_token(arch, bytes_by_kind)
    by_bandwidth = batch * gpu.bandwidth_gbs * 1e9 / (read + mem["kv_bytes"])
    by_compute = gpu.tflops * 1e12 / (2 * matmul_params(arch) + attention_flops(arch, context))
    prefill_flops = 2 * matmul_params(arch) + attention_flops(arch, context / 2)
    return {
        "gpu": gpu.name, "memory_gib": gpu.memory_gib, "bandwidth_gbs": gpu.bandwidth_gbs, "tflops": gpu.tflops,
        "context": context, "batch": batch, "kv_bits": kv_bits,
        "overhead": {"pct": overhead.pct, "fixed_gib": overhead.fixed_gib}, **mem,
        "capacity_bytes": capacity, "headroom_bytes": capacity - mem["needed_bytes"], "fits": fits,
        "weight_read_bytes": read, "read_bytes_per_step": read + mem["kv_bytes"],
        "decode_tokens_per_s": min(by_bandwidth, by_compute) if fits else None,
        "decode_bound": "bandwidth" if by_bandwidth <= by_compute else "compute",
        "prefill_flops_per_token": prefill_flops,
        "prefill_tokens_per_s": gpu.tflops * 1e12 / prefill_flops if fits else None,
    }  # fmt: skip
