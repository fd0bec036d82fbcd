"""Built-in models: the reference report's three MLPs, synthesized from a seed (nothing downloaded)."""

from __future__ import annotations

from functools import lru_cache

import torch

from ..errors import QcoreError
from .model import Model

# d for each preset; layer widths are d/4 -> d/2 -> d -> 2d, biases included.
PRESETS = {"small": 64, "medium": 256, "large": 1024}
EVAL_ROWS = 64  # rows of the fixed evaluation batch
CALIB_ROWS = 2048  # rows of N(0, I) calibration inputs: 2x the widest layer input, so H has full rank


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
