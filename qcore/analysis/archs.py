"""Architectures from published configs: exact parameter counts by tensor kind, and the KV cache."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

from ..errors import QcoreError

KINDS = ("embedding", "attention", "mlp", "norm", "head")


class TensorSpec(NamedTuple):
    """One tensor of an architecture (or a model, for the size model): its name, kind and shape."""

    name: str
    kind: str  # one of KINDS
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Arch:
    """A decoder-only transformer, in Hugging Face config terms."""

    name: str
    hidden: int  # hidden_size
    intermediate: int  # intermediate_size (gated MLP: gate, up, down)
    layers: int  # num_hidden_layers
    heads: int  # num_attention_heads
    kv_heads: int  # num_key_value_heads (grouped-query attention when < heads)
    head_dim: int  # per-head width
    vocab: int  # vocab_size
    tied: bool  # lm_head shares the embedding matrix
    qkv_bias: bool = False  # biases on q, k, v (Qwen2)
    qk_norm: bool = False  # RMSNorm on q and k per head (Qwen3)
    max_context: int = 4096

    def __post_init__(self):
        for f in ("hidden", "intermediate", "layers", "heads", "kv_heads", "head_dim", "vocab"):
            if getattr(self, f) <= 0:
                raise QcoreError(f"{self.name}: {f} must be positive, got {getattr(self, f)}")
        if self.heads % self.kv_heads:
            raise QcoreError(f"{self.name}: heads ({self.heads}) must be a multiple of kv heads ({self.kv_heads})")

    def tensors(self) -> list[TensorSpec]:
        """Every tensor, a layer's once per layer, in Hugging Face naming (without the "model." prefix)."""
        h, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        out = [("embed_tokens.weight", "embedding", (self.vocab, h))]
        for i in range(self.layers):
            p = f"layers.{i}."
            out += [
                (p + "self_attn.q_proj.weight", "attention", (q, h)),
                (p + "self_attn.k_proj.weight", "attention", (kv, h)),
                (p + "self_attn.v_proj.weight", "attention", (kv, h)),
                (p + "self_attn.o_proj.weight", "attention", (h, q)),
                (p + "mlp.gate_proj.weight", "mlp", (self.intermediate, h)),
                (p + "mlp.up_proj.weight", "mlp", (self.intermediate, h)),
                (p + "mlp.down_proj.weight", "mlp", (h, self.intermediate)),
                (p + "input_layernorm.weight", "norm", (h,)),
                (p + "post_attention_layernorm.weight", "norm", (h,)),
            ]
            if self.qkv_bias:
                out += [
                    (p + f"self_attn.{x}_proj.bias", "attention", (n,)) for x, n in (("q", q), ("k", kv), ("v", kv))
                ]
            if self.qk_norm:
                out += [(p + f"self_attn.{x}_norm.weight", "norm", (self.head_dim,)) for x in ("q", "k")]
        out.append(("norm.weight", "norm", (h,)))
        if not self.tied:
            out.append(("lm_head.weight", "head", (self.vocab, h)))
        return [TensorSpec(*t) for t in out]

    def params_by_kind(self) -> dict[str, int]:
        counts = dict.fromkeys(KINDS, 0)
        for t in self.tensors():
            counts[t.kind] += math.prod(t.shape)
        return counts

    @property
    def params(self) -> int:
        return sum(self.params_by_kind().values())


# Published config.json values. Totals are pinned in the tests.
ARCHS = {
    a.name: a
    for a in (
        Arch("Qwen3-0.6B", 1024, 3072, 28, 16, 8, 128, 151_936, tied=True, qk_norm=True, max_context=40_960),
        Arch("Llama-3.2-1B", 2048, 8192, 16, 32, 8, 64, 128_256, tied=True, max_context=131_072),
        Arch("generic-1B", 2048, 5632, 22, 32, 4, 64, 32_000, tied=False, max_context=2048),
        Arch("LLaMA-7B", 4096, 11008, 32, 32, 32, 128, 32_000, tied=False, max_context=2048),
        Arch("Llama-2-7B", 4096, 11008, 32, 32, 32, 128, 32_000, tied=False, max_context=4096),
        Arch("generic-7B", 4096, 11008, 32, 32, 32, 128, 32_000, tied=False, max_context=4096),
        Arch("Llama-3-8B", 4096, 14336, 32, 32, 8, 128, 128_256, tied=False, max_context=8192),
        Arch("Mistral-7B", 4096, 14336, 32, 32, 8, 128, 32_000, tied=False, max_context=32_768),
        Arch("Qwen2.5-7B", 3584, 18944, 28, 28, 4, 128, 152_064, tied=False, qkv_bias=True, max_context=32_768),
    )
}


def get_arch(name: str) -> Arch:
    try:
        return ARCHS[name]
    except KeyError:
        raise QcoreError(f"unknown architecture '{name}'; choose one of: {', '.join(ARCHS)}") from None


def arch_from_config(config: dict | str, name: str = "custom") -> Arch:
    """An Arch from a Hugging Face config.json (a dict or its text)."""
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError as e:
            raise QcoreError(f"config.json is not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise QcoreError("config.json must be a JSON object")
    try:
        hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        return Arch(
            name=str(config.get("_name_or_path") or name),
            hidden=hidden,
            intermediate=int(config["intermediate_size"]),
            layers=int(config["num_hidden_layers"]),
            heads=heads,
            kv_heads=int(config.get("num_key_value_heads") or heads),
            head_dim=int(config.get("head_dim") or hidden // heads),
            vocab=int(config["vocab_size"]),
            tied=bool(config.get("tie_word_embeddings", False)),
            qkv_bias=bool(config.get("attention_bias", False)) or config.get("model_type") == "qwen2",
            qk_norm=config.get("model_type") == "qwen3",
            max_context=int(config.get("max_position_embeddings") or 4096),
        )
    except KeyError as e:
        raise QcoreError(f"config.json lacks {e.args[0]}, which the size model needs") from None
    except (TypeError, ValueError) as e:
        raise QcoreError(f"config.json has a malformed value: {e}") from None


def arch_from_params(params: int, name: str | None = None) -> Arch:
    """A generic Llama-style shape with about `params` parameters (for a plain count)."""
    if params < 1_000_000:
        raise QcoreError(f"a parameter count of at least 1,000,000 is needed, got {params:,}")
    # hidden ~ (params / (12 * layers))^0.5 with layers ~ hidden / 128, vocab 32000: solve by search.
    best = None
    for hidden in range(256, 16385, 128):
        layers = max(2, round(hidden / 128))
        inter = int(round(hidden * 8 / 3 / 128) * 128)
        a = Arch(name or f"generic-{params:,}", hidden, inter, layers, hidden // 128, hidden // 128, 128, 32_000, False)
        if best is None or abs(a.params - params) < abs(best.params - params):
            best = a
    return best


def kv_cache_bytes(arch: Arch, context: int, batch: int = 1, kv_bits: int = 16) -> int:
    """K and V for every layer: 2 x layers x kv_heads x head_dim x tokens x batch x bits / 8."""
    if context <= 0 or batch <= 0 or kv_bits not in (4, 8, 16):
        raise QcoreError("context and batch must be positive, and the KV dtype 16, 8 or 4 bits")
    return 2 * arch.layers * arch.kv_heads * arch.head_dim * context * batch * kv_bits // 8


def arch_summary(arch: Arch) -> dict:
    return {**asdict(arch), "params": arch.params, "params_by_kind": arch.params_by_kind()}
