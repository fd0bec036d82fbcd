"""The reference report's published figures (seed/quantization-scaling-report.zh.md), for side-by-side display.

These are the report's numbers, never ours: every figure this product shows as its own is measured.
"""

REFERENCE_DATE = "2026-02-20"

# (preset, method) -> the report's params, FP16 size ("MB", really MiB), ratio, cosine, seconds
REFERENCE_ROWS = {
    ("small", "int8"): {"params": 10_976, "fp16_mib": 0.02, "compression_ratio": 1.41, "weight_cosine": 1.0000, "quant_seconds": 0.12},
    ("small", "int2"): {"params": 10_976, "fp16_mib": 0.02, "compression_ratio": 2.39, "weight_cosine": 0.9142, "quant_seconds": 0.06},
    ("medium", "int8"): {"params": 172_928, "fp16_mib": 0.33, "compression_ratio": 1.90, "weight_cosine": 1.0000, "quant_seconds": 0.14},
    ("medium", "int2"): {"params": 172_928, "fp16_mib": 0.33, "compression_ratio": 5.75, "weight_cosine": 0.8713, "quant_seconds": 0.09},
    ("large", "int8"): {"params": 2_756_096, "fp16_mib": 5.26, "compression_ratio": 1.98, "weight_cosine": 1.0000, "quant_seconds": 0.62},
    ("large", "int2"): {"params": 2_756_096, "fp16_mib": 5.26, "compression_ratio": 8.12, "weight_cosine": 0.8357, "quant_seconds": 0.35},
}  # fmt: skip


def reference_row(preset: str, method: str) -> dict | None:
    """The report's figures for this preset and method, or None where it published none."""
    return REFERENCE_ROWS.get((preset, method))


# The report's predictions for real models (its "预测" tables): ratio range, size, cosine, saving.
# "AngelSlim 2-bit" maps to our calibrated/trained 2-bit method, seq.
REFERENCE_PREDICTIONS = {
    ("Qwen3-0.6B", "int8"): {"ratio": (1.99, 1.99), "size": "~600 MB", "cosine": ">0.99", "saving": "~50%"},
    ("Qwen3-0.6B", "int2"): {"ratio": (7.8, 7.9), "size": "~150 MB", "cosine": "0.82-0.85", "saving": "~87%"},
    ("Qwen3-0.6B", "seq"): {"ratio": (7.5, 8.0), "size": "~150 MB", "cosine": ">0.95", "saving": "~87%"},
    ("LLaMA-7B", "int8"): {"ratio": (2.0, 2.0), "size": "~7 GB", "cosine": ">0.99", "saving": "~50%"},
    ("LLaMA-7B", "int2"): {"ratio": (7.9, 8.0), "size": "~1.75 GB", "cosine": "0.80-0.83", "saving": "~87%"},
    ("LLaMA-7B", "seq"): {"ratio": (7.8, 8.0), "size": "~1.75 GB", "cosine": ">0.95", "saving": "~87%"},
}
