"""One extrapolation, built once for the CLI and the Extrapolate page: sizes, KV cache and accuracy."""

from __future__ import annotations

from dataclasses import replace

from ..analysis.accuracy import AccuracyFit, fit_accuracy, predict_accuracy
from ..analysis.archs import kv_cache_bytes
from ..analysis.gpus import get_gpu, gpu_what_if
from ..analysis.sizing import arch_sizes
from ..progress import Progress
from .specs import ExtrapolationSpec


def extrapolate(spec: ExtrapolationSpec, fit: AccuracyFit | None = None, progress: Progress | None = None) -> dict:
    """arch_sizes' figures for the spec's architecture and method, plus:

    all_quantized_ratio: the ratio with embeddings and head quantized too (what a codes-only figure suggests);
    kv_cache: {context, batch, kv_bits, bytes, max_context}; accuracy (when spec.accuracy): predict_accuracy's figures from
    `fit`, or from a fit measured here on the presets (fit_accuracy) when none is given; gpu (when spec.gpu):
    gpu_what_if's fit and tokens/s for the quantized weights on that card, at the spec's context, batch and KV bits.
    """
    arch = spec.target.resolve()
    options = dict(spec.options)
    doc = arch_sizes(arch, spec.method, options, spec.policy)
    everything = replace(spec.policy, quantize_head=True, quantize_embeddings=True)
    doc["all_quantized_ratio"] = arch_sizes(arch, spec.method, options, everything)["compression_ratio"]
    doc["kv_cache"] = {
        "context": spec.context, "batch": spec.batch, "kv_bits": spec.kv_bits,
        "bytes": kv_cache_bytes(arch, spec.context, spec.batch, spec.kv_bits),
        "max_context": arch.max_context,  # the model's own limit: a longer context is sized, and flagged
    }  # fmt: skip
    if spec.gpu:
        doc["gpu"] = gpu_what_if(
            arch, doc["quantized_bytes"], doc["bytes_by_kind"], get_gpu(spec.gpu), spec.context, spec.batch,
            spec.kv_bits, spec.overhead,
        )  # fmt: skip
    if spec.accuracy:
        fit = fit or fit_accuracy(spec.method, options, progress=progress)
        doc["accuracy"] = predict_accuracy(fit, arch, spec.policy)
    return doc
