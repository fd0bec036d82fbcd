"""Calibration data for methods that take a layer Hessian: H = 2 X^T X / n from the inputs that reach a layer."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..errors import QcoreError
from ..models.model import Capture, Model


def layer_hessian(model: Model, tensors: Mapping[str, torch.Tensor], name: str) -> torch.Tensor:
    """H = 2 X^T X / n from the inputs that reach layer `name` on the calibration batch, running `model`'s code with
    `tensors` (earlier layers already quantized, as GPTQ calibrates). Returns (in, in) float32."""
    if name in model.embeddings:
        return lookup_hessian(tensors[name])
    capture = Capture(until=name)  # a model code that can stops its pass at this layer
    with torch.no_grad():
        model.forward(tensors, model.calib_inputs, capture)
    if name not in capture:
        raise QcoreError(f"the model code never feeds '{name}', so it cannot be calibrated")
    X = capture[name].reshape(-1, capture[name].shape[-1]).float()  # (n, in)
    return (2.0 / X.shape[0]) * (X.T @ X)  # (in, in)


def lookup_hessian(W: torch.Tensor) -> torch.Tensor:
    """The Hessian of an embedding table: the identity (dim, dim).

    A lookup copies one row, so every output element depends on one weight and no two columns interact: the
    Hessian over the columns is diagonal, and GPTQ's error feedback vanishes (it rounds to nearest on its own
    grid). Token frequencies would only weight rows, which column-wise feedback cannot use.
    """
    return torch.eye(W.shape[-1])
