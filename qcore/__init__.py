"""qcore: post-training weight quantization, Parquet artifacts and metrics. No UI imports here."""

from .analysis.report import render_markdown, scaling_rows, write_report
from .errors import QcoreError
from .formats.packing import pack_codes, unpack_codes
from .formats.storage import ArtifactStats, ArtifactWriter, from_table, load, save, to_table
from .measure.metrics import ErrorSums, cosine, quality_band
from .measure.pipeline import Policy, RunResult, quantize_model, run
from .methods.quant import QuantizedTensor, choose_qparams, dequantize, quantize_affine
from .methods.registry import METHODS, Method, get_method
from .methods.rtn import RTNConfig, quantize_rtn
from .models.presets import PRESETS, Model, load_preset

__all__ = [
    "METHODS", "PRESETS", "ArtifactStats", "ArtifactWriter", "ErrorSums", "Method", "Model", "Policy",
    "QcoreError", "QuantizedTensor", "RTNConfig", "RunResult", "choose_qparams", "cosine", "dequantize",
    "from_table", "get_method", "load", "load_preset", "pack_codes", "quality_band", "quantize_affine",
    "quantize_model", "quantize_rtn", "render_markdown", "run", "save", "scaling_rows", "to_table",
    "unpack_codes", "write_report",
]  # fmt: skip
