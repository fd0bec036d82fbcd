"""What the CLI and every page ask for, as frozen, hashable values, each with the command line that repeats it.

    ModelRef             a model: a built-in name, a weight file, a session's upload, a file in the server's folder
    RunSpec              one run: model, method, options, policy, codec        -> `python -m qcore run ...`
    Target               an architecture: catalogued, a config.json, or a parameter count
    ExtrapolationSpec    one extrapolation: target, method, options, policy, KV cache -> `python -m qcore extrapolate ...`

Options are kept as sorted (name, value) pairs of the options the user set; a command line carries those that
differ from the method's defaults (defaults live once, in the method's config), so it prints the same figures.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from ..analysis.archs import Arch, arch_from_config, arch_from_params, get_arch
from ..analysis.gpus import Overhead, get_gpu
from ..analysis.report import format_spec
from ..errors import QcoreError
from ..formats.readers import WEIGHTS_DIR_ENV
from ..methods.registry import get_method
from ..models.policy import Policy

Options = tuple[tuple[str, Any], ...]  # sorted (name, value) pairs: a hashable options dict
RUN_POLICY = Policy()  # the one default of every surface: every 2-D tensor (the head too) but embeddings
EXTRAPOLATE_POLICY = RUN_POLICY  # the same recipe as a run, so a run and its extrapolation describe one file


def as_options(options: dict | Options | None) -> Options:
    return tuple(sorted(dict(options or {}).items()))


def flag(name: str) -> str:
    """The CLI flag of a method option: group_size -> --group-size."""
    return "--" + name.replace("_", "-")


def option_flags(method: str, options: Options) -> list[str]:
    """The flags that set `options` for `method`: only values that differ from the method's defaults."""
    defaults = {o.name: o.default for o in get_method(method).options()}
    out = []
    for name, value in options:
        if name in defaults and value == defaults[name]:
            continue
        if isinstance(value, bool):
            out.append(flag(name) if value else "--no-" + flag(name)[2:])
        else:
            out += [flag(name), repr(value) if isinstance(value, float) else str(value)]
    return out


def policy_flags(policy: Policy, default: Policy) -> list[str]:
    """The policy flags of a command whose own default is `default`."""
    out = []
    if policy.quantize_head != default.quantize_head:
        out.append("--quantize-head" if policy.quantize_head else "--keep-head")
    if policy.quantize_embeddings != default.quantize_embeddings:
        out.append("--quantize-embeddings" if policy.quantize_embeddings else "--keep-embeddings")
    out += ["--include", policy.include] if policy.include else []
    return out + (["--exclude", policy.exclude] if policy.exclude else [])


class Shell(str):
    """A token already written for the shell (not quoted again)."""


def render(tokens: list[str]) -> str:
    return " ".join(t if isinstance(t, Shell) else shlex.quote(t) for t in tokens)


@dataclass(frozen=True)
class MethodSpec:
    """A method with the options the user set: one configuration of a sweep or an extrapolation."""

    method: str
    options: Options = ()

    @classmethod
    def make(cls, method: str, options=None) -> MethodSpec:
        get_method(method).make_config(**dict(options or {}))
        return cls(method, as_options(options))

    def changed(self) -> Options:
        """The options that differ from the method's defaults."""
        defaults = {o.name: o.default for o in get_method(self.method).options()}
        return tuple((k, v) for k, v in self.options if defaults.get(k) != v)


@dataclass(frozen=True)
class ModelRef:
    """A model, named so that the same ref always means the same bytes (the key of every cached run).

    kind "preset": name is a built-in model. "file": name is a path. "upload": name is the uploaded file's name and
    digest its sha256. "server": name is a path relative to $QCORE_WEIGHTS_DIR and digest "size:mtime_ns".
    """

    kind: str
    name: str
    digest: str = ""

    def __post_init__(self):
        if self.kind not in ("preset", "file", "upload", "server"):
            raise QcoreError(f"unknown model source '{self.kind}'")

    @property
    def label(self) -> str:
        """How the model is named on screen and in records."""
        return self.name.rsplit("/", 1)[-1] if self.kind in ("file", "server") else self.name

    def source_args(self) -> list[str]:
        """The CLI arguments that open this model (an upload: the user's own copy of the file)."""
        if self.kind == "preset":
            return ["--preset", self.name]
        if self.kind == "server":
            escaped = "".join("\\" + c if c in '"$`\\' else c for c in self.name)
            return ["--weights", Shell(f'"${WEIGHTS_DIR_ENV}/{escaped}"')]
        return ["--weights", self.name]


@dataclass(frozen=True)
class RunSpec:
    """One run. Build it with `make`, which validates the options against the method's config."""

    model: ModelRef
    method: str
    options: Options = ()
    policy: Policy = RUN_POLICY
    codec: str = "none"

    @classmethod
    def make(cls, model: ModelRef, method: str, options=None, policy: Policy = RUN_POLICY, codec: str = "none"):
        get_method(method).make_config(**dict(options or {}))  # a bad option fails here, with the method's message
        if codec not in ("none", "zstd"):
            raise QcoreError(f"unknown codec '{codec}'; choose none or zstd")
        return cls(model, method, as_options(options), policy, codec)

    def argv(self) -> list[str]:
        """`python -m qcore run ... --json`, as tokens."""
        out = ["python", "-m", "qcore", "run", *self.model.source_args(), "--method", self.method]
        out += option_flags(self.method, self.options)
        out += ["--codec", self.codec] if self.codec != "none" else []
        return [*out, *policy_flags(self.policy, RUN_POLICY), "--json"]

    def command_line(self) -> str:
        return render(self.argv())


@dataclass(frozen=True)
class Target:
    """An architecture to extrapolate to. kind "catalog": value is its name; "config": value is a config.json's
    text and label the name to show; "params": value is a parameter count (a generic Llama-style shape)."""

    kind: str
    value: Any
    label: str = ""

    def resolve(self) -> Arch:
        if self.kind == "catalog":
            return get_arch(self.value)
        if self.kind == "config":
            return arch_from_config(self.value, self.label or "custom")
        if self.kind == "params":
            return arch_from_params(int(self.value))
        raise QcoreError(f"unknown architecture source '{self.kind}'")

    def args(self) -> list[str]:
        if self.kind == "catalog":
            return ["--arch", self.value]
        if self.kind == "config":
            return ["--config", f"{self.label or 'config'}.json"]
        return ["--params", str(int(self.value))]


@dataclass(frozen=True)
class ExtrapolationSpec:
    """Sizes, KV cache and (optionally) extrapolated accuracy of one method on one architecture."""

    target: Target
    method: str
    options: Options = ()
    policy: Policy = EXTRAPOLATE_POLICY
    context: int = 4096
    batch: int = 1
    kv_bits: int = 16
    accuracy: bool = True
    gpu: str = ""  # a card of qcore.analysis.gpus.GPUS for the fit and tokens/s what-if; "" for none
    overhead: Overhead = Overhead()  # the what-if's allowance for activations and framework

    @classmethod
    def make(cls, target: Target, method: str, options=None, policy: Policy = EXTRAPOLATE_POLICY, **kv):
        """Validated: the options against the method's config, the KV cache settings against their ranges, the GPU
        against the shipped list (its name as listed)."""
        get_method(method).make_config(**dict(options or {}))
        if kv.get("gpu"):
            kv["gpu"] = get_gpu(kv["gpu"]).name
        spec = cls(target, method, as_options(options), policy, **kv)
        if spec.context <= 0 or spec.batch <= 0 or spec.kv_bits not in (4, 8, 16):
            raise QcoreError("context and batch must be positive, and the KV dtype 16, 8 or 4 bits")
        return spec

    def argv(self) -> list[str]:
        out = ["python", "-m", "qcore", "extrapolate", *self.target.args(), "--method", self.method]
        out += option_flags(self.method, self.options) + policy_flags(self.policy, EXTRAPOLATE_POLICY)
        out += ["--context", str(self.context)] if self.context != 4096 else []
        out += ["--batch", str(self.batch)] if self.batch != 1 else []
        out += ["--kv-bits", str(self.kv_bits)] if self.kv_bits != 16 else []
        out += gpu_flags(self.gpu, self.overhead)
        return [*out, *([] if self.accuracy else ["--no-accuracy"]), "--json"]

    def command_line(self) -> str:
        return render(self.argv())


def gpu_flags(gpu: str, overhead: Overhead) -> list[str]:
    """--gpu and the overhead flags that differ from their defaults (only with a GPU: they set its what-if)."""
    if not gpu:
        return []
    out, default = ["--gpu", gpu], Overhead()
    out += ["--overhead-pct", repr(float(overhead.pct))] if overhead.pct != default.pct else []
    return out + (
        ["--overhead-gib", repr(float(overhead.fixed_gib))] if overhead.fixed_gib != default.fixed_gib else []
    )


@dataclass(frozen=True)
class ReportSpec:
    """The scaling report for presets x method specs, in one language."""

    presets: tuple[str, ...]
    specs: tuple[MethodSpec, ...]
    lang: str = "en"

    def argv(self, out: str = "report") -> list[str]:
        methods = ",".join(format_spec(s.method, dict(s.changed())) for s in self.specs)
        return ["python", "-m", "qcore", "report", "--presets", ",".join(self.presets), "--methods", methods,
                "--out", out, "--lang", self.lang]  # fmt: skip

    def command_line(self, out: str = "report") -> str:
        return render(self.argv(out))
