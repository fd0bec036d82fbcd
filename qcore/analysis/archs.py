"""Architectures from published configs: exact parameter counts by tensor kind, artifact sizes, KV cache.

The size model applies the same per-tensor rules as the storage: packed codes, per-group scales and
zeros in the dtypes the method really produces, FP16 for what the policy keeps, and the Parquet
container measured on a skeleton artifact with the same entries.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import torch

from ..errors import QcoreError

KINDS = ("embedding", "attention", "mlp", "norm", "head")


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

    def tensors(self) -> list[tuple[str, str, tuple[int, ...]]]:
        """Every tensor as (name, kind, shape); a layer's tensors appear once per layer."""
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
        return out

    def params_by_kind(self) -> dict[str, int]:
        counts = dict.fromkeys(KINDS, 0)
        for _, kind, shape in self.tensors():
            counts[kind] += math.prod(shape)
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


# ---- size model -------------------------------------------------------------------------------

PROXY_STD = 0.02  # proxies are N(0, 0.02^2), typical of trained transformer weights


@dataclass(frozen=True)
class SizePolicy:
    """Which tensors the size model quantizes: 2-D weights, with embeddings and head as chosen."""

    quantize_embeddings: bool = False
    quantize_head: bool = False

    def selects(self, kind: str, shape: tuple[int, ...]) -> bool:
        if len(shape) < 2:
            return False
        if kind == "embedding":
            return self.quantize_embeddings
        if kind == "head":
            return self.quantize_head
        return True


def _proxy(method: str, options: tuple, n: int):
    """The method's output on a 2-row proxy with `n` columns: its codes, scale and zero layouts."""
    from ..methods.registry import get_method

    m = get_method(method)
    cfg = m.make_config(**dict(options))
    W = torch.randn(2, n, generator=torch.Generator().manual_seed(0)) * PROXY_STD
    if m.needs_calibration:
        return m.quantize(W, cfg, H=torch.eye(n)), cfg
    return m.quantize(W, cfg), cfg


def tensor_bytes(method: str, options: dict, shape: tuple[int, ...]) -> tuple[int, int]:
    """(payload, metadata) bytes of one quantized tensor, by the storage's own rules."""
    from ..formats.packing import packed_nbytes
    from ..formats.storage import CHUNK_BYTES
    from ..methods.quant import MixedTensor, num_groups

    out, n = shape[0], math.prod(shape[1:])
    qt, cfg = _proxy(method, tuple(sorted(options.items())), n)
    if isinstance(qt, MixedTensor) or not hasattr(qt, "q"):
        total = math.ceil(cfg.target_bpw * out * n / 8)  # a budget method: its target is its size
        return total, 0
    per = max(1, CHUNK_BYTES * 8 // max(qt.bits * n, 1))
    full, rest = divmod(out, per)
    payload = full * packed_nbytes(per * n, qt.bits) + (packed_nbytes(rest * n, qt.bits) if rest else 0)
    groups = out * num_groups(n, qt.group_size)
    if qt.scale_q is not None:
        sq = qt.scale_q
        g2 = num_groups(groups, sq.group_size)
        scale = packed_nbytes(groups, sq.bits) + g2 * sq.scale.element_size()
        scale += sq.zero.element_size() * (1 if sq.zero.numel() == 1 else g2)
    else:
        scale = groups * qt.scale.element_size()
    zero = qt.zero.element_size() * (1 if qt.zero.numel() == 1 else groups)
    book = 0 if qt.codebook is None else qt.codebook.numel() * 4
    return payload, scale + zero + book


def predict_size(
    entries: list[tuple[str, str, tuple[int, ...]]],
    method: str | None,
    options: dict | None = None,
    policy: SizePolicy = SizePolicy(),
) -> dict:
    """Predicted artifact bytes for tensors (name, kind, shape); method None = the FP16 baseline.

    Returns payload, metadata, passthrough, container and file bytes, plus bytes and params by kind.
    """
    options = options or {}
    by_kind = dict.fromkeys(KINDS, 0)
    payload = metadata = passthrough = 0
    cache: dict[tuple, tuple[int, int]] = {}
    skeleton = []
    for name, kind, shape in entries:
        if method is not None and policy.selects(kind, shape):
            key = (shape[0], math.prod(shape[1:]))
            if key not in cache:
                cache[key] = tensor_bytes(method, options, shape)
            p, m = cache[key]
            payload, metadata = payload + p, metadata + m
            by_kind[kind] += p + m
            skeleton.append((name, p + m, True))
        else:
            b = 2 * math.prod(shape)
            passthrough += b
            by_kind[kind] += b
            skeleton.append((name, b, False))
    container = _container_bytes(skeleton, method, options)
    file_bytes = payload + metadata + passthrough + container
    return {
        "payload_bytes": payload,
        "metadata_bytes": metadata,
        "passthrough_bytes": passthrough,
        "container_bytes": container,
        "file_bytes": file_bytes,
        "bytes_by_kind": by_kind,
    }


def _container_bytes(skeleton: list[tuple[str, int, bool]], method: str | None, options: dict) -> int:
    """Parquet framing measured on a skeleton artifact: the same rows and row groups, empty payloads."""

    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..formats.storage import _STRING_COLUMNS, FILE_METADATA, ROW_GROUP_BYTES, SCHEMA
    from ..methods.registry import get_method

    config = "{}"
    if method is not None:
        cfg = get_method(method).make_config(**options)
        config = json.dumps({k: v for k, v in vars(cfg).items()}, sort_keys=True)
    buf = pa.BufferOutputStream()
    writer = pq.ParquetWriter(
        buf, SCHEMA, compression="none", use_dictionary=_STRING_COLUMNS, write_statistics=False, store_schema=False
    )
    writer.add_key_value_metadata(FILE_METADATA)
    rows, pending, pages = [], 0, 0
    for name, nbytes, quantized in skeleton:
        rows.append(
            {"name": name, "encoding": "affine" if quantized else "fp16", "method": method if quantized else "fp16",
             "config": config if quantized else "{}", "shape": [0, 0], "dtype": "float32", "bits": 0,
             "group_size": 0, "row_start": 0, "rows": 0, "codes": b"", "scale": b"" if quantized else None,
             "scale_dtype": "float16" if quantized else None, "zero": b"" if quantized else None,
             "zero_dtype": "uint8" if quantized else None, "zero_shared": False, "codebook": None}
        )  # fmt: skip
        pending += nbytes
        pages += nbytes // (1 << 20)  # page headers of large values, about one per MiB
        if pending >= ROW_GROUP_BYTES:
            writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), row_group_size=len(rows))
            rows, pending = [], 0
    if rows:
        writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), row_group_size=len(rows))
    writer.close()
    return len(buf.getvalue()) + 24 * pages


def model_entries(tensors: dict[str, torch.Tensor], head: tuple[str, ...] = ()) -> list[tuple[str, str, tuple]]:
    """(name, kind, shape) for a model's tensors, so presets go through the same size model."""
    return [
        (n, "head" if n in head else ("norm" if t.dim() < 2 else "mlp"), tuple(t.shape)) for n, t in tensors.items()
    ]


def arch_sizes(arch: Arch, method: str, options: dict | None = None, policy: SizePolicy = SizePolicy()) -> dict:
    """FP16 and quantized artifact sizes for an architecture, with ratio, saving and the breakdown."""
    entries = arch.tensors()
    fp16 = predict_size(entries, None)
    quant = predict_size(entries, method, options, policy)
    return {
        "arch": arch.name,
        "method": method,
        "params": arch.params,
        "params_by_kind": arch.params_by_kind(),
        "fp16_bytes": fp16["file_bytes"],
        "quantized_bytes": quant["file_bytes"],
        "compression_ratio": fp16["file_bytes"] / quant["file_bytes"],
        "memory_saving": 1 - quant["file_bytes"] / fp16["file_bytes"],
        "bpw": 8 * quant["file_bytes"] / arch.params,
        "fp16_bytes_by_kind": fp16["bytes_by_kind"],
        "bytes_by_kind": quant["bytes_by_kind"],
        "breakdown": {k: quant[k] for k in ("payload_bytes", "metadata_bytes", "passthrough_bytes", "container_bytes")},
        "policy": {"quantize_embeddings": policy.quantize_embeddings, "quantize_head": policy.quantize_head},
    }


# ---- accuracy extrapolation --------------------------------------------------------------------


@dataclass(frozen=True)
class AccuracyFit:
    """SQNR (dB) of a method against row length n, fitted as a + b * log10(ln n) over measured layers.

    The form follows min-max quantization of Gaussian rows, whose range grows like sqrt(2 ln n), so
    its noise grows like ln n; methods whose error does not depend on n fit b ~ 0.
    """

    method: str
    options: tuple
    a: float
    b: float
    residual_db: float  # RMS residual of the fit over the measured layers
    backtest_db: float  # fit on all but the largest preset, error predicting the largest (dB)
    backtest_cosine: float  # the same error, in weight cosine
    points: tuple  # (row length, params, sqnr_db) of every measured layer

    def sqnr_at(self, n: int) -> float:
        return self.a + self.b * math.log10(math.log(max(n, 3)))

    @property
    def band_db(self) -> float:
        """Half-width of the uncertainty band: the back-test error plus twice the residual."""
        return abs(self.backtest_db) + 2 * self.residual_db


def _fit(points) -> tuple[float, float, float]:
    xs = [math.log10(math.log(max(n, 3))) for n, _, _ in points]
    ys = [s for _, _, s in points]
    ws = [p for _, p, _ in points]
    sw = sum(ws)
    mx, my = sum(w * x for w, x in zip(ws, xs, strict=True)) / sw, sum(w * y for w, y in zip(ws, ys, strict=True)) / sw
    sxx = sum(w * (x - mx) ** 2 for w, x in zip(ws, xs, strict=True))
    b = sum(w * (x - mx) * (y - my) for w, x, y in zip(ws, xs, ys, strict=True)) / sxx if sxx > 0 else 0.0
    a = my - b * mx
    res = math.sqrt(sum(w * (y - a - b * x) ** 2 for w, x, y in zip(ws, xs, ys, strict=True)) / sw)
    return a, b, res


def _combine(pairs) -> float:
    """Cosine of a model from (params, sqnr_db) per tensor, for weights of equal variance."""
    total = sum(p for p, _ in pairs)
    noise = sum(p * 10 ** (-s / 10) for p, s in pairs) / total
    return 1 / math.sqrt(1 + noise)


def fit_accuracy(method: str, options: dict | None = None, presets=("small", "medium", "large")) -> AccuracyFit:
    """Measure the presets with the method and fit its SQNR trend; back-test on the largest preset."""
    from ..measure.pipeline import run
    from ..models.presets import load_preset

    per_preset = []
    for name in presets:
        rec = run(load_preset(name), method, options).record
        pts = [(math.prod(la["shape"][1:]), la["params"], la["sqnr_db"]) for la in rec["layers"] if la["sqnr_db"]]
        per_preset.append(pts)
    points = [p for pts in per_preset for p in pts]
    if len(points) < 2:
        raise QcoreError(f"too few measured layers to fit '{method}' (its error may be exactly zero)")
    a, b, res = _fit(points)
    head, last = [p for pts in per_preset[:-1] for p in pts], per_preset[-1]
    a0, b0, _ = _fit(head) if len(head) >= 2 else (a, b, 0.0)
    pred = _combine([(p, a0 + b0 * math.log10(math.log(max(n, 3)))) for n, p, _ in last])
    meas = _combine([(p, s) for _, p, s in last])
    pred_db = -10 * math.log10(1 / pred**2 - 1)
    meas_db = -10 * math.log10(1 / meas**2 - 1)
    return AccuracyFit(
        method, tuple(sorted((options or {}).items())), a, b, res, pred_db - meas_db, pred - meas, tuple(points)
    )


def predict_accuracy(fit: AccuracyFit, arch: Arch, policy: SizePolicy = SizePolicy()) -> dict:
    """Extrapolated weight cosine and SQNR for an architecture's quantized tensors, with a band."""
    pairs = [(math.prod(s), math.prod(s[1:])) for _, k, s in arch.tensors() if policy.selects(k, s)]
    cos = _combine([(p, fit.sqnr_at(n)) for p, n in pairs])
    lo = _combine([(p, fit.sqnr_at(n) - fit.band_db) for p, n in pairs])
    hi = _combine([(p, fit.sqnr_at(n) + fit.band_db) for p, n in pairs])
    return {
        "weight_cosine": cos,
        "weight_cosine_low": lo,
        "weight_cosine_high": hi,
        "sqnr_db": -10 * math.log10(1 / cos**2 - 1),
        "band_db": fit.band_db,
        "backtest_cosine_error": fit.backtest_cosine,
        "backtest_db_error": fit.backtest_db,
        "extrapolated": True,
    }
