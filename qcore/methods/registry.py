"""The one method registry and the one method contract. The CLI, the app's selectors and the report read it.

A method is one entry: a pure function

    quantize(W, cfg, *, H=None, progress=None) -> Quantized

from a tensor (two or more dims, viewed as (out, in)) and a frozen config to a quantized tensor. H is the
(in, in) Hessian proxy 2 X^T X / n of the layer's inputs: gptq requires it; e8p and trellis take it when their config
says calibrate and the model has calibration data (BlockLDLQ); the others ignore it. progress(done, total, label) hears from long inner loops
(the trellis's Viterbi); most methods are quick enough not to call it.
A method that allocates across tensors (mixed) or trains the model (seq's QAT) also declares a whole-model form

    quantize_model(job: ModelJob, cfg) -> {name: Quantized, or a tensor kept (or trained) in FP16}

Defaults live once, in the config dataclass: a field's metadata carries its choices and whether the method fixes
it. What a person reads about an option (label, unit, one-line definition, in English and Chinese) lives once, in
qcore/labels.json, keyed by the option's name. The registry validates options, stamps every result with the
method's name and its config (as a dict), and lists the options for every surface.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..errors import QcoreError
from ..labels import Label, option_label
from ..progress import Progress
from .contract import ModelJob
from .e8p import E8PConfig, quantize_e8p
from .gptq import GPTQConfig, quantize_gptq
from .hqq import HQQConfig, quantize_hqq
from .mixed import MixedConfig, quantize_mixed, quantize_mixed_model
from .nf4 import NF4Config, quantize_nf4
from .qat import qat_seq
from .quant import Quantized
from .rtn import Int2Config, Int8Config, RTNConfig, quantize_rtn
from .seq import SEQConfig, quantize_seq
from .trellis import TrellisConfig, quantize_trellis


@dataclass(frozen=True)
class Option:
    """One option of a method, as every surface shows it."""

    name: str
    type: str  # "int", "float" or "bool"
    default: Any
    choices: tuple | None  # the allowed values, where the config lists them
    fixed: bool  # the method pins it; the user may not change it
    label: Label  # what a person reads: label, unit and definition in English and Chinese (qcore/labels.json)

    @property
    def help(self) -> str:
        """The one-line English definition (the CLI's help text)."""
        return self.label.definition("en")

    def as_dict(self) -> dict:
        """Name, type, default, choices, fixed, and the English label, unit and help, with the Chinese under zh."""
        text = lambda lang: {  # noqa: E731
            "label": self.label.title(lang), "unit": self.label.unit_of(lang), "help": self.label.definition(lang)
        }  # fmt: skip
        plain = {k: getattr(self, k) for k in ("name", "type", "default", "fixed")}
        return {**plain, "choices": list(self.choices) if self.choices else None, **text("en"), "zh": text("zh")}


def config_dict(cfg) -> dict:
    """A config as the plain dict records and artifacts carry."""
    return dataclasses.asdict(cfg)


def never(cfg) -> bool:
    return False


@dataclass(frozen=True)
class Method:
    """A registered quantization method (see the module docstring for the contract)."""

    name: str
    summary: str
    quantize_fn: Callable[..., Quantized]  # (W, cfg, *, H=None, progress=None) -> Quantized
    config_cls: type
    needs_calibration: bool = False  # H is required: the method refuses models without calibration data
    takes_calibration: bool = False  # H is optional: used when the config's `calibrate` is on and the model has data
    quantize_model_fn: Callable[[ModelJob, Any], dict] | None = None  # the optional whole-model form
    kind: str = "scalar"  # "scalar": each weight on its own grid; "vector": lattice or trellis codes over many weights
    # Whether a config is plain min-max RTN, whose error the uniform-noise model predicts per layer.
    minmax: Callable[[Any], bool] = never
    # (method, options) of a method without calibration that stores a config's output in exactly the same layout
    # (tests/analysis/test_sizing.py checks it), so sizing need not factor an (in, in) Hessian to read a layout.
    storage_twin: Callable[[Any], tuple[str, dict]] | None = None

    def quantize(
        self, W: torch.Tensor, cfg, *, H: torch.Tensor | None = None, progress: Progress | None = None
    ) -> Quantized:
        """The method on one tensor, stamped with its name and config."""
        return self.quantize_fn(W, cfg, H=H, progress=progress).stamped(self.name, config_dict(cfg))

    def uses_hessian(self, cfg) -> bool:
        """Whether a run with this config computes each layer's Hessian (where the model has calibration data)."""
        return self.needs_calibration or (self.takes_calibration and cfg.calibrate)

    def quantize_model(self, job: ModelJob, cfg) -> dict[str, Quantized | torch.Tensor]:
        """The whole-model form, stamped like `quantize`. Only for methods that declare one."""
        if self.quantize_model_fn is None:
            raise QcoreError(f"method '{self.name}' quantizes one tensor at a time; it has no whole-model form")
        stamp = lambda items: {  # noqa: E731
            n: v.stamped(self.name, config_dict(cfg)) if isinstance(v, Quantized) else v for n, v in items.items()
        }
        sized = replace(job, file_bytes=lambda items: job.file_bytes(stamp(items)))  # sizes as they will be stored
        return stamp(self.quantize_model_fn(sized, cfg))

    def make_config(self, **options):
        """A validated config: the config class's defaults, then the user's options (None means 'not given')."""
        given = {k: v for k, v in options.items() if v is not None}
        fields = {f.name: f for f in dataclasses.fields(self.config_cls)}
        unknown = sorted(set(given) - set(fields))
        if unknown:
            takes = ", ".join(sorted(fields)) or "no options"
            raise QcoreError(f"method '{self.name}' has no option {', '.join(unknown)}; it takes {takes}")
        for k, v in given.items():
            if fields[k].metadata.get("fixed") and v != fields[k].default:
                raise QcoreError(f"method '{self.name}' fixes {k}={fields[k].default}; use 'rtn' to choose {k} freely")
        return self.config_cls(**given)

    def takes(self, options: dict) -> dict:
        """The options of `options` this method lets the user set (shared flags apply only where they fit)."""
        free = {o.name for o in self.options() if not o.fixed}
        return {k: v for k, v in options.items() if k in free}

    def defaults(self):
        """The config with every option at its default."""
        return self.config_cls()

    def options(self) -> list[Option]:
        """Each option's name, type, default, choices, whether it is fixed, and its label (qcore/labels.json)."""
        base = self.defaults()
        return [
            Option(
                f.name,
                type(getattr(base, f.name)).__name__,
                getattr(base, f.name),
                tuple(f.metadata["choices"]) if "choices" in f.metadata else None,
                bool(f.metadata.get("fixed")),
                option_label(f.name, self.name),
            )
            for f in dataclasses.fields(self.config_cls)
        ]


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


def plain_minmax(cfg: RTNConfig) -> bool:
    return not cfg.sym and not cfg.clip


register(
    Method("int8", "the reference report's PTQ INT8: RTN, 8-bit, per-channel, symmetric", quantize_rtn, Int8Config)
)
register(
    Method(
        "int2",
        "the reference report's PTQ INT2: RTN, 2-bit, per-channel, asymmetric min-max",
        quantize_rtn,
        Int2Config,
        minmax=plain_minmax,
    )
)
register(
    Method(
        "rtn",
        "round-to-nearest: 2/3/4/8 bits, per-channel or group-wise, sym or asym, optional MSE clipping",
        quantize_rtn,
        RTNConfig,
        minmax=plain_minmax,
    )
)
register(
    Method(
        "seq",
        "AngelSlim-style 2-bit: half-integer levels {-1.5, -0.5, 0.5, 1.5} x a per-group MSE-searched scale, "
        "then QAT where the model can be trained",
        quantize_seq,
        SEQConfig,
        quantize_model_fn=qat_seq,
    )
)
register(
    Method(
        "mixed",
        "per-row 2/3/4-bit allocation from measured error, meeting a file bits-per-weight budget",
        quantize_mixed,
        MixedConfig,
        quantize_model_fn=quantize_mixed_model,
    )
)
register(
    Method(
        "gptq",
        "GPTQ (Frantar et al. 2022): column-by-column rounding with Hessian-weighted error feedback; needs calibration data",
        quantize_gptq,
        GPTQConfig,
        needs_calibration=True,
        storage_twin=lambda c: ("rtn", {"bits": c.bits, "group_size": c.group_size, "sym": c.sym, "rotate": c.rotate}),
    )
)
register(
    Method(
        "hqq",
        "half-quadratic quantization (Badri & Shaji 2023): optimises each group's zero for an lp-norm error; no calibration",
        quantize_hqq,
        HQQConfig,
    )
)
register(
    Method(
        "nf4",
        "NormalFloat-4 (QLoRA, Dettmers et al. 2023): 16-value normal code book, absmax per block of 64, "
        "optional double quantization",
        quantize_nf4,
        NF4Config,
    )
)
register(
    Method(
        "e8p",
        "QuIP#-style 2-bit vector quantization (Tseng et al. 2024): Hadamard incoherence, then 8 weights per 16-bit "
        "E8P lattice code; BlockLDLQ feedback where the model has calibration data",
        quantize_e8p,
        E8PConfig,
        takes_calibration=True,
        kind="vector",
    )
)
register(
    Method(
        "trellis",
        "QTIP-style 2-bit trellis-coded quantization (Tseng et al. 2024): Hadamard incoherence, then Viterbi over "
        "sequences on a bitshift trellis with a computed Gaussian code; BlockLDLQ feedback with calibration data",
        quantize_trellis,
        TrellisConfig,
        takes_calibration=True,
        kind="vector",
    )
)
