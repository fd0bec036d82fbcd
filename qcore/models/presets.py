"""Built-in models: the reference report's three MLPs, synthesized from a seed (nothing downloaded)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import torch

from ..errors import QcoreError

# d for each preset; layer widths are d/4 -> d/2 -> d -> 2d, biases included.
PRESETS = {"small": 64, "medium": 256, "large": 1024}
EVAL_ROWS = 64  # rows of the fixed evaluation batch
CALIB_ROWS = 2048  # rows of N(0, I) calibration inputs: 2x the widest layer input, so H has full rank


@dataclass(frozen=True, eq=False)
class Model:
    """Named float32 tensors, plus (where the model can run) a forward pass and an evaluation batch."""

    name: str
    tensors: dict[str, torch.Tensor]
    description: str = ""
    # forward(tensors, x, capture=None) -> outputs; with a dict `capture`, it also stores the input of
    # every linear layer there, keyed by the layer's weight name, as (rows, in).
    forward: Callable[..., torch.Tensor] | None = None
    eval_inputs: torch.Tensor | None = None
    calib_inputs: torch.Tensor | None = None  # inputs for calibrated methods (from training data, never eval)
    # task(ref_tensors, tensors) -> {metric: float}: the model's own quality measure (accuracy, perplexity, ...)
    task: Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor]], dict] | None = None
    # loss(tensors, step) -> scalar: a differentiable training loss on the step-th training batch, for QAT
    loss: Callable[[dict[str, torch.Tensor], int], torch.Tensor] | None = None
    head: tuple[str, ...] = field(default=())  # names of output-head weights, for the selection policy
    embeddings: tuple[str, ...] = field(default=())  # names of embedding tables, for the selection policy
    skipped: tuple[str, ...] = field(default=())  # tensors a reader left out (integer buffers), as "name (dtype)"

    @property
    def params(self) -> int:
        numel = getattr(self.tensors, "numel_of", None)  # lazy tensors know their sizes without loading
        if numel is not None:
            return sum(numel(n) for n in self.tensors)
        return sum(t.numel() for t in self.tensors.values())


def mlp_widths(d: int) -> list[int]:
    return [d // 4, d // 2, d, 2 * d]


def mlp_forward(tensors: dict[str, torch.Tensor], x: torch.Tensor, capture: dict | None = None) -> torch.Tensor:
    """x (B, d/4) -> (B, 2d): Linear-ReLU-Linear-ReLU-Linear over fc1..fcN."""
    n = sum(1 for k in tensors if k.endswith(".weight"))
    for i in range(1, n + 1):
        if capture is not None:
            capture[f"fc{i}.weight"] = x  # (B, in_i)
        x = torch.nn.functional.linear(x, tensors[f"fc{i}.weight"], tensors[f"fc{i}.bias"])  # (B, out_i)
        if i < n:
            x = torch.relu(x)
    return x


@lru_cache(maxsize=8)
def load_preset(name: str, seed: int = 0) -> Model:
    """The preset MLP: N(0, 1/fan_in) weights and biases from a seeded generator, so bytes reproduce."""
    if name not in PRESETS:
        raise QcoreError(f"unknown preset '{name}'; choose one of: {', '.join(PRESETS)}")
    widths = mlp_widths(PRESETS[name])
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True), start=1):
        std = fan_in**-0.5
        tensors[f"fc{i}.weight"] = torch.randn(fan_out, fan_in, generator=gen) * std  # (out, in)
        tensors[f"fc{i}.bias"] = torch.randn(fan_out, generator=gen) * std  # (out,)
    x = torch.randn(EVAL_ROWS, widths[0], generator=torch.Generator().manual_seed(seed + 1))  # (B, d/4)
    calib = torch.randn(CALIB_ROWS, widths[0], generator=torch.Generator().manual_seed(seed + 2))  # (N, d/4)
    desc = f"MLP {' -> '.join(map(str, widths))} with biases, seeded Gaussian weights (std 1/sqrt(fan_in))"
    return Model(name, tensors, desc, mlp_forward, x, calib, head=(f"fc{len(widths) - 1}.weight",))


def model_names() -> list[str]:
    """Every built-in model: the synthesized presets, then the models trained on real data."""
    from .trained import TRAINED

    return [*PRESETS, *TRAINED]


def load_model(name: str, seed: int = 0) -> Model:
    """A preset (synthesized from `seed`) or a trained model (from its committed checkpoint)."""
    if name in PRESETS:
        return load_preset(name, seed)
    from .trained import TRAINED, load_trained

    if name in TRAINED:
        return load_trained(name)[0]
    raise QcoreError(f"unknown preset '{name}'; choose one of: {', '.join(model_names())}")
