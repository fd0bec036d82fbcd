"""Every built-in model by name: the synthesized presets, then the models trained on real data."""

from __future__ import annotations

import math

from ..errors import QcoreError
from .model import Model
from .presets import PRESETS, load_preset
from .trained import CONFIGS, TRAINED, expected_shapes, load_trained


def model_names() -> list[str]:
    """Every built-in model: the synthesized presets, then the models trained on real data."""
    return [*PRESETS, *TRAINED]


def load_model(name: str, seed: int = 0) -> Model:
    """A preset (synthesized from `seed`) or a trained model (from its committed checkpoint)."""
    if name in PRESETS:
        return load_preset(name, seed)
    if name in TRAINED:
        return load_trained(name)
    raise QcoreError(f"unknown preset '{name}'; choose one of: {', '.join(model_names())}")


def listing() -> list[dict]:
    """name, params, description and whether trained, for every built-in model; trained ones are sized from their
    configs, so listing never reads a checkpoint."""
    out = []
    for name in PRESETS:
        m = load_preset(name)
        out.append({"name": name, "params": m.params, "description": m.description, "trained": False})
    for name, desc in TRAINED.items():
        params = sum(math.prod(s) for s in expected_shapes(CONFIGS[name]).values())
        out.append({"name": name, "params": params, "description": desc, "trained": True})
    return out
