"""What every reader shares: shape checks, the float32 conversion, confinement to a folder, clean messages, and
the Model a reader returns.

A reader's message starts with the label the caller gave (the user's own file name, never a temp name), is one
line, carries no terminal escapes and never quotes the file's bytes.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import torch

from ..errors import QcoreError
from ..models.model import Model

MAX_ELEMENTS = 1 << 60  # elements a shape may claim once its zero dims are set aside (8 bytes each stay < 2^63)
FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_MESSAGE = 400  # characters of a reader's message
ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]")

EMBEDDING_NAME = re.compile(
    r"(^|[._])(embed\w*|wte|wpe|tok_embeddings|word_embeddings|position_embeddings|token_type_embeddings)([._]|$)"
)
HEAD_NAME = re.compile(r"(^|\.)(lm_head|output|classifier|score)\.weight$")


def roles(names) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(embeddings, heads) among tensor names, by the naming conventions of common checkpoints."""
    names = list(names)
    return tuple(n for n in names if EMBEDDING_NAME.search(n)), tuple(n for n in names if HEAD_NAME.search(n))


def check_shape(label: str, name: str, shape) -> tuple[int, ...]:
    """A shape as a tuple of ints; refused when it is not whole numbers >= 0, or when its non-zero dims multiply
    past what any array can address (an empty [0, 2**62] tensor breaks every library it reaches)."""
    if not isinstance(shape, list | tuple) or not all(type(d) is int and d >= 0 for d in shape):
        raise QcoreError(f"{label}: tensor '{name}' has an invalid shape {str(shape)[:80]}")
    if math.prod(d for d in shape if d) > MAX_ELEMENTS:
        raise QcoreError(
            f"{label}: tensor '{name}' has an impossible shape {list(shape)}: its dims multiply past 2^60, "
            "which overflows any array"
        )
    return tuple(shape)


def out_of_range(label: str, name: str, largest: float) -> QcoreError:
    return QcoreError(
        f"{label}: tensor '{name}' holds {largest:.3g}, out of float32 range (largest {FLOAT32_MAX:.3g}): it "
        "overflows float32; rescale it, or store it in a float32-sized range"
    )


def to_float32(a: np.ndarray, label: str, name: str) -> np.ndarray:
    """A writable native float32 array (`a` itself when it already is one). Finite values beyond float32's range
    are refused: they would turn into Inf without a word."""
    if a.dtype == np.float32 and a.dtype.isnative and a.flags.writeable:
        return a
    with np.errstate(over="ignore"):
        f = a.astype(np.float32)
    if a.dtype.itemsize > 4:
        lost = np.isinf(f) & np.isfinite(a)
        if lost.any():
            raise out_of_range(label, name, float(np.abs(a[lost]).max()))
    return f


def tensor_to_float32(t: torch.Tensor, label: str, name: str) -> torch.Tensor:
    """A contiguous float32 copy of a float tensor, refusing finite values beyond float32's range."""
    f = t.to(torch.float32, memory_format=torch.contiguous_format, copy=True)
    if t.dtype == torch.float64:
        lost = torch.isinf(f) & torch.isfinite(t)
        if lost.any():
            raise out_of_range(label, name, float(t[lost].abs().max()))
    return f


def confine(path: Path, root: Path | None, label: str) -> Path:
    """The real path of `path`; with a root, refused unless it stays inside it (symlinks followed)."""
    real = Path(os.path.realpath(path))
    if root is not None and not real.is_relative_to(root):
        raise QcoreError(f"{label}: '{path.name}' leads outside the server's weights folder; refused")
    return real


def clean_message(message: str, path: Path | None = None, label: str | None = None) -> str:
    """One line, no terminal escapes, the caller's label in place of the temp file's name, at most MAX_MESSAGE."""
    if path is not None and label:
        for raw in (str(path), str(Path(os.path.realpath(path))), path.name):
            if raw and raw != label:
                message = message.replace(raw, label)
    message = " ".join(ESCAPES.sub("", message).split())
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def eager_model(label: str, tensors: dict[str, torch.Tensor], skipped: tuple[str, ...]) -> Model:
    """The Model of a reader that decoded everything: float32 tensors, and the non-float ones it left out."""
    if not tensors:
        raise QcoreError(
            f"{label}: no float tensors to quantize" + (f" (only {', '.join(skipped[:8])})" if skipped else "")
        )
    desc = f"{len(tensors)} float tensors from {label}" + (
        f"; skipped non-float {', '.join(skipped)}" if skipped else ""
    )
    return Model(label, tensors, desc, skipped=skipped)
