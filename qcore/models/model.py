"""The Model every stage passes along: named tensors, plus the code that runs them where the lab has it."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import torch

ROLES = ("head", "embedding")  # tensors a policy may keep in FP16 by role; others have role ""

# task(ref_tensors, tensors) -> {metric: float}: the model's own quality measure (accuracy, perplexity, ...) of
# float `tensors` against the reference `ref_tensors`, on a fixed held-out batch (deterministic).
Task = Callable[[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]], dict[str, float]]


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
    ROLES = ("head", "embedding")  # tensors a policy may keep in FP16 by role; others have role ""

    # task(ref_tensors, tensors) -> {metric: float}: the model's own quality measure (accuracy, perplexity, ...)
    task: Task | None = None
    # loss(tensors, step) -> scalar: a differentiable training loss on the step-th training batch, for QAT
    loss: Callable[[dict[str, torch.Tensor], int], torch.Tensor] | None = None
    head: tuple[str, ...] = field(default=())  # names of output-head weights, for the selection policy
    embeddings: tuple[str, ...] = field(default=())  # names of embedding tables, for the selection policy
    skipped: tuple[str, ...] = field(default=())  # tensors a reader left out (integer buffers), as "name (dtype)"

    @property
    def params(self) -> int:
        return sum(math.prod(self.shape_of(n)) for n in self.tensors)

    def shape_of(self, name: str) -> tuple[int, ...]:
        """A tensor's shape, without reading a lazily loaded one."""
        if isinstance(self.tensors, LazyTensors):
            return self.tensors.shape_of(name)
        return tuple(self.tensors[name].shape)

    def role(self, name: str) -> str:
        """'head', 'embedding', or '' for every other tensor."""
        return self._roles.get(name, "")

    @cached_property
    def _roles(self) -> dict[str, str]:
        """{name: role} of the named tensors: one lookup per tensor, where scanning the tuples made a pass over a
        model with thousands of embedding-like names quadratic."""
        return {**dict.fromkeys(self.embeddings, "embedding"), **dict.fromkeys(self.head, "head")}

    @property
    def can_run(self) -> bool:
        """Whether the lab has code for this model and an evaluation batch (output metrics)."""
        return self.forward is not None and self.eval_inputs is not None

    @property
    def can_calibrate(self) -> bool:
        """Whether calibrated methods can capture this model's layer inputs."""
        return self.forward is not None and self.calib_inputs is not None


class StopForward(Exception):
    """Raised inside a forward pass once the layer a capture waits for has its input: the rest need not run."""


class Capture(dict):
    """{layer weight name: input (rows, in)} filled by a forward pass; `until` names the layer after whose input
    the pass may stop (a forward that supports it returns None then; others run to the end)."""

    def __init__(self, until: str | None = None):
        super().__init__()
        self.until = until


class LazyTensors(Mapping):
    """{name: float32 tensor}, read from a file on each access and never cached; shapes known up front."""

    def __init__(self, shapes: dict[str, tuple[int, ...]], load: Callable[[str], torch.Tensor]):
        self._shapes = shapes
        self._load = load

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self._shapes:
            raise KeyError(name)
        return self._load(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._shapes)

    def __len__(self) -> int:
        return len(self._shapes)

    def shape_of(self, name: str) -> tuple[int, ...]:
        return self._shapes[name]
