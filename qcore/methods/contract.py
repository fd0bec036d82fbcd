"""The input of a method's whole-model form (the contract itself is written in registry.py's docstring)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..models.model import Model
from ..progress import Progress


@dataclass(frozen=True)
class ModelJob:
    """What a whole-model form gets besides its config."""

    model: Model
    selected: dict[str, torch.Tensor]  # the tensors the policy quantizes, in model order
    kept: dict[str, torch.Tensor]  # the tensors stored in FP16 (they count towards the file, and may train along)
    file_bytes: Callable[[dict], int]  # bytes of the artifact that {name: Quantized or tensor} would make
    progress: Progress | None = None
