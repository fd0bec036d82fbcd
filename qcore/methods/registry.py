"""The one method registry: the CLI, the app's selectors and the report read their choices here."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from ..errors import QcoreError
from .gptq import GPTQConfig, quantize_gptq
from .hqq import HQQConfig, quantize_hqq
from .mixed import MixedConfig, quantize_mixed, quantize_mixed_model
from .nf4 import NF4Config, quantize_nf4
from .qat import qat_seq
from .quant import QuantizedTensor
from .rtn import RTNConfig, quantize_rtn
from .seq import SEQConfig, quantize_seq


@dataclass(frozen=True)
class Method:
    """A quantization method: a pure function from (W, config) to a QuantizedTensor."""

    name: str
    summary: str
    quantize: Callable[[torch.Tensor, Any], QuantizedTensor]
    config_cls: type
    defaults: tuple[tuple[str, Any], ...] = ()  # overrides of config_cls's own defaults
    fixed: frozenset[str] = frozenset()  # options this method pins; the user may not change them
    needs_calibration: bool = False
    # Optional whole-model form, for methods that allocate across tensors:
    # quantize_all(model, selected {name: W}, kept_fp16 {name: tensor}, config) -> {name: quantized or tensor}
    quantize_all: Callable | None = None

    def make_config(self, **options):
        """A validated config: defaults, then the user's options (None means 'not given')."""
        given = {k: v for k, v in options.items() if v is not None}
        known = {f.name for f in dataclasses.fields(self.config_cls)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise QcoreError(
                f"method '{self.name}' has no option {', '.join(unknown)}; it takes {', '.join(sorted(known))}"
            )
        values = dict(self.defaults)
        for k, v in given.items():
            if k in self.fixed and v != values[k]:
                raise QcoreError(f"method '{self.name}' fixes {k}={values[k]}; use 'rtn' to choose {k} freely")
            values[k] = v
        return self.config_cls(**values)

    def options(self) -> list[dict]:
        """Each option's name, type, default, help, choices and whether it is fixed, for UIs and `methods`."""
        base = self.config_cls()
        defaults = dict(self.defaults)
        rows = []
        for f in dataclasses.fields(self.config_cls):
            rows.append(
                {
                    "name": f.name,
                    "type": type(getattr(base, f.name)).__name__,
                    "default": defaults.get(f.name, getattr(base, f.name)),
                    "help": f.metadata.get("help", ""),
                    "choices": list(f.metadata["choices"]) if "choices" in f.metadata else None,
                    "fixed": f.name in self.fixed,
                }
            )
        return rows


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The registered method called `name`, or a QcoreError that lists the known ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise QcoreError(f"unknown method '{name}'; choose one of: {', '.join(METHODS)}") from None


_FIXED_RTN = frozenset({"bits", "group_size", "sym", "clip"})
register(
    Method(
        "int8",
        "the reference report's PTQ INT8: RTN, 8-bit, per-channel, symmetric",
        partial(quantize_rtn, method="int8"),
        RTNConfig,
        (("bits", 8), ("group_size", 0), ("sym", True), ("clip", False)),
        _FIXED_RTN,
    )
)
register(
    Method(
        "int2",
        "the reference report's PTQ INT2: RTN, 2-bit, per-channel, asymmetric min-max",
        partial(quantize_rtn, method="int2"),
        RTNConfig,
        (("bits", 2), ("group_size", 0), ("sym", False), ("clip", False)),
        _FIXED_RTN,
    )
)
register(
    Method(
        "rtn",
        "round-to-nearest: 2/3/4/8 bits, per-channel or group-wise, sym or asym, optional MSE clipping",
        quantize_rtn,
        RTNConfig,
        (("bits", 4), ("group_size", 0), ("sym", False), ("clip", False)),
    )
)
register(
    Method(
        "seq",
        "AngelSlim-style 2-bit: half-integer levels {-1.5, -0.5, 0.5, 1.5} x a per-group MSE-searched scale, "
        "then QAT where the model can be trained",
        quantize_seq,
        SEQConfig,
        quantize_all=qat_seq,
    )
)
register(
    Method(
        "mixed",
        "per-row 2/3/4-bit allocation from measured error, meeting a file bits-per-weight budget",
        quantize_mixed,
        MixedConfig,
        quantize_all=quantize_mixed_model,
    )
)
register(
    Method(
        "gptq",
        "GPTQ (Frantar et al. 2022): column-by-column rounding with Hessian-weighted error feedback; needs calibration data",
        quantize_gptq,
        GPTQConfig,
        (("bits", 4), ("group_size", 128), ("sym", False), ("act_order", True), ("damp", 0.1), ("block_size", 128)),
        needs_calibration=True,
    )
)
register(
    Method(
        "hqq",
        "half-quadratic quantization (Badri & Shaji 2023): optimises each group's zero for an lp-norm error; no calibration",
        quantize_hqq,
        HQQConfig,
        (("bits", 4), ("group_size", 64), ("iters", 20), ("lp_norm", 0.7), ("beta", 10.0), ("kappa", 1.01),
         ("optimize_scale", False)),
    )
)  # fmt: skip
register(
    Method(
        "nf4",
        "NormalFloat-4 (QLoRA, Dettmers et al. 2023): 16-value normal code book, absmax per block of 64, "
        "optional double quantization",
        quantize_nf4,
        NF4Config,
        (("group_size", 64), ("double_quant", False), ("bits", 4)),
        frozenset({"bits"}),
    )
)
