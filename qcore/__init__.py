"""qcore: post-training weight quantization, Parquet artifacts and metrics. No UI imports here."""

from .errors import QcoreError
from .metrics import ErrorSums, cosine, quality_band
from .packing import pack_codes, unpack_codes
from .pipeline import Policy, RunResult, quantize_model, run
from .presets import PRESETS, Model, load_preset
from .quant import QuantizedTensor, choose_qparams, dequantize, quantize_affine
from .registry import METHODS, Method, get_method
from .report import render_markdown, scaling_rows, write_report
from .rtn import RTNConfig, quantize_rtn
from .storage import ArtifactStats, ArtifactWriter, from_table, load, save, to_table

__all__ = [
    "METHODS", "PRESETS", "ArtifactStats", "ArtifactWriter", "ErrorSums", "Method", "Model", "Policy",
    "QcoreError", "QuantizedTensor", "RTNConfig", "RunResult", "choose_qparams", "cosine", "dequantize",
    "from_table", "get_method", "load", "load_preset", "pack_codes", "quality_band", "quantize_affine",
    "quantize_model", "quantize_rtn", "render_markdown", "run", "save", "scaling_rows", "to_table",
    "unpack_codes", "write_report",
]  # fmt: skip
