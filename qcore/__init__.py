"""qcore: post-training weight quantization, Parquet artifacts and metrics. No UI imports here.

The folders follow the data flow, and imports run from a later stage to an earlier one only:

    models/    weights in and the lab's own model code: Model, presets, trained models, the selection policy
    methods/   quantize: the method registry and every method (a pure function of a tensor and a config)
    formats/   pack + store, and weight files in: bit packing, the Parquet artifact, validated readers
    measure/   one run (select, quantize, store, measure) and the metric definitions
    analysis/  scaling report, sweeps, Pareto front, architectures, size model, accuracy extrapolation
    api/       the headless API the CLI and the pages share: specs with their command lines, runs, extrapolation
    cli.py     python -m qcore
"""

from . import runtime  # noqa: F401  (first: sets what torch reads when it loads)
from .analysis.report import render_markdown, scaling_rows, write_report
from .api.specs import ExtrapolationSpec, ModelRef, RunSpec, Target
from .errors import QcoreError
from .formats.packing import pack_codes, unpack_codes
from .formats.storage import ArtifactStats, ArtifactWriter, load, save
from .formats.table import from_table, to_table
from .measure.metrics import ErrorSums, cosine, quality_band
from .measure.pipeline import RunResult, quantize_model, run
from .methods.quant import MixedTensor, Quantized, QuantizedTensor, choose_qparams, dequantize, quantize_affine
from .methods.registry import METHODS, Method, get_method
from .methods.rtn import RTNConfig, quantize_rtn
from .models.catalog import load_model, model_names
from .models.model import Model
from .models.policy import Policy
from .models.presets import PRESETS, load_preset

__all__ = [
    "METHODS", "PRESETS", "ArtifactStats", "ArtifactWriter", "ErrorSums", "ExtrapolationSpec", "Method",
    "MixedTensor", "Model", "ModelRef", "Policy", "QcoreError", "Quantized", "QuantizedTensor", "RTNConfig",
    "RunResult", "RunSpec", "Target", "choose_qparams", "cosine", "dequantize", "from_table", "get_method", "load",
    "load_model", "load_preset", "model_names", "pack_codes", "quality_band", "quantize_affine", "quantize_model",
    "quantize_rtn", "render_markdown", "run", "save", "scaling_rows", "to_table", "unpack_codes", "write_report",
]  # fmt: skip
