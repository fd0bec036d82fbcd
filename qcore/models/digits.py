"""An MLP on scikit-learn's bundled 8x8 handwritten digits (nothing downloaded): config, data, forward pass,
training loss and task metric (held-out top-1). Splits are a seeded permutation, the last n_test rows held out."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import QcoreError


@dataclass(frozen=True)
class DigitsConfig:
    """An MLP 64 -> hidden... -> 10 with ReLU, trained with AdamW on 8x8 digit images."""

    hidden: tuple[int, ...]  # hidden layer widths
    n_test: int = 500  # held-out images; the other 1297 train the model
    epochs: int = 40  # passes over the training images
    batch_size: int = 64
    lr: float = 1e-3  # AdamW learning rate, cosine-decayed to lr / 10
    weight_decay: float = 1e-4  # AdamW decoupled weight decay
    seed: int = 0  # seeds the split, the initial weights and the batch order

    def __post_init__(self):
        if not self.hidden or min(self.hidden) < 1:
            raise QcoreError(f"digits hidden widths must be positive, got {self.hidden}")

    @property
    def widths(self) -> list[int]:
        return [64, *self.hidden, 10]


def digits_names(cfg: DigitsConfig) -> list[str]:
    """Tensor names in forward order: fc1.weight, fc1.bias, fc2.weight, ..."""
    return [f"fc{i}.{p}" for i in range(1, len(cfg.widths)) for p in ("weight", "bias")]


def digits_forward(tensors: Mapping[str, torch.Tensor], x: torch.Tensor, capture: dict | None = None) -> torch.Tensor:
    """x (B, 64) standardised pixels -> (B, 10) logits: Linear-ReLU-...-Linear over fc1..fcN."""
    n = sum(1 for k in tensors if k.startswith("fc") and k.endswith(".weight"))
    for i in range(1, n + 1):
        if capture is not None:
            capture[f"fc{i}.weight"] = x  # (B, in_i)
        x = F.linear(x, tensors[f"fc{i}.weight"], tensors[f"fc{i}.bias"])  # (B, out_i)
        if i < n:
            x = torch.relu(x)
    return x


@lru_cache(maxsize=1)
def digits_data() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled digits (no download): images (1797, 64) float32 in [0, 16], labels (1797,) int64."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise QcoreError("the digits models need scikit-learn; install requirements.txt") from None
    X, y = load_digits(return_X_y=True)
    return torch.from_numpy(X.astype(np.float32)), torch.from_numpy(y.astype(np.int64))


def digits_split(cfg: DigitsConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(train_index, test_index): a seeded permutation, the last n_test rows held out."""
    n = digits_data()[0].shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed))
    return perm[: n - cfg.n_test], perm[n - cfg.n_test :]


def digits_batch(n: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """Row indices of the step-th batch: each epoch walks a fresh seeded permutation of range(n)."""
    epoch, i = divmod(step, math.ceil(n / batch_size))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    return perm[i * batch_size : (i + 1) * batch_size]


def digits_loss(x: torch.Tensor, labels: torch.Tensor, cfg: DigitsConfig, tensors: Mapping, step: int) -> torch.Tensor:
    """Mean cross-entropy (nats) on the step-th training batch: the training loss, and Model.loss for QAT.

    x: (N, 64) standardised training images; labels: (N,) int64.
    """
    idx = digits_batch(len(x), cfg.batch_size, cfg.seed, step)  # (batch,)
    return F.cross_entropy(digits_forward(tensors, x[idx]), labels[idx])


def digits_task(x: torch.Tensor, labels: torch.Tensor, ref_tensors: Mapping, tensors: Mapping) -> dict[str, float]:
    """Held-out top-1 and cross-entropy (nats per image) of `tensors` and of `ref_tensors`, the share of images
    whose predicted class is the reference model's, and the mean squared logit difference. Top-1 counts whole
    images (1/N steps) and saturates at low error; cross-entropy and agreement still separate methods there.

    x: (N, 64) standardised held-out images; labels: (N,) int64.
    """
    with torch.no_grad():
        ref = digits_forward(ref_tensors, x).double()  # (N, 10)
        got = digits_forward(tensors, x).double()  # (N, 10)
    return {
        "top1": float((got.argmax(-1) == labels).double().mean()),
        "top1_ref": float((ref.argmax(-1) == labels).double().mean()),
        "nll": float(F.cross_entropy(got, labels)),
        "nll_ref": float(F.cross_entropy(ref, labels)),
        "same_class": float((got.argmax(-1) == ref.argmax(-1)).double().mean()),
        "logit_mse": float(((got - ref) ** 2).mean()),
    }
