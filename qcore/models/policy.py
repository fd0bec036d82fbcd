"""Which tensors a run quantizes, and why each other one stays FP16: the one selection policy every surface uses.

Tensors with fewer than two dims (biases, norms) and empty ones always stay FP16. An output head and embedding
tables are kept or quantized as the policy says; include / exclude regexes narrow the rest. The same rules serve
a loaded model (roles from Model.head / Model.embeddings) and an architecture's tensor list (roles from kinds).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from ..errors import QcoreError
from .model import Model

# Every decision, in the order they are checked: "quantize", or the reason a tensor stays FP16.
DECISIONS = ("quantize", "1d", "empty", "head", "embedding", "not_included", "excluded")


@dataclass(frozen=True)
class Policy:
    """The selection policy. Frozen and hashable, so it can key a cache."""

    quantize_head: bool = True  # the output head (an MLP's last layer, an LM's lm_head)
    quantize_embeddings: bool = False  # embedding tables (token, position), kept FP16 by default
    include: str | None = None  # regex: only names that match are quantized
    exclude: str | None = None  # regex: names that match stay FP16

    def __post_init__(self):
        for pattern in (self.include, self.exclude):
            if pattern:
                try:
                    re.compile(pattern)
                except re.error as e:
                    raise QcoreError(f"bad regular expression '{pattern}': {e}") from None

    def decide(self, name: str, shape: tuple[int, ...], role: str = "") -> str:
        """'quantize', or why the tensor stays FP16 (one of DECISIONS). role: 'head', 'embedding' or ''."""
        if len(shape) < 2:
            return "1d"
        if math.prod(shape) == 0:
            return "empty"
        if role == "head" and not self.quantize_head:
            return "head"
        if role == "embedding" and not self.quantize_embeddings:
            return "embedding"
        if self.include and not re.search(self.include, name):
            return "not_included"
        if self.exclude and re.search(self.exclude, name):
            return "excluded"
        return "quantize"

    def selects(self, name: str, W: torch.Tensor, model: Model) -> bool:
        """Whether a run quantizes tensor `name` of `model` (a float tensor the rules above select)."""
        return W.is_floating_point() and self.decide(name, tuple(W.shape), model.role(name)) == "quantize"

    def describe(self) -> str:
        parts = [
            "tensors with 2+ dims",
            "head " + ("quantized" if self.quantize_head else "kept FP16"),
            "embeddings " + ("quantized" if self.quantize_embeddings else "kept FP16"),
        ]
        if self.include:
            parts.append(f"include /{self.include}/")
        if self.exclude:
            parts.append(f"exclude /{self.exclude}/")
        return "; ".join(parts)


@dataclass(frozen=True)
class TensorDecision:
    """One row of a policy explanation."""

    name: str
    shape: tuple[int, ...]
    params: int
    decision: str  # one of DECISIONS


def explain(model: Model, policy: Policy) -> list[TensorDecision]:
    """What the policy does with every tensor of `model`, in model order, without reading tensor data."""
    out = []
    for name in model.tensors:
        shape = model.shape_of(name)
        out.append(TensorDecision(name, shape, math.prod(shape), policy.decide(name, shape, model.role(name))))
    return out


def totals(rows: list[TensorDecision]) -> dict[str, tuple[int, int]]:
    """decision -> (tensors, params), in DECISIONS order, for the decisions that occur."""
    out = {}
    for d in DECISIONS:
        hits = [r for r in rows if r.decision == d]
        if hits:
            out[d] = (len(hits), sum(r.params for r in hits))
    return out
