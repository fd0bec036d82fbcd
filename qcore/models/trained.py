"""Small models trained on real data, with task metrics: an MLP on scikit-learn's handwritten digits and a
character-level transformer LM on the Python standard library's docstrings (data/README.md).

Weights live in qcore/models/checkpoints/NAME.safetensors, stored as float16 and upcast to float32 on load, so the
reference model is exactly representable in the FP16 baseline. Everything that is not a weight (the digits'
input standardisation, the config, the corpus digest, the training stats) sits in the file's string metadata,
so `Model.tensors` holds weights only and every ratio counts the same tensors. The splits are fixed: a seeded
permutation of the digits, and the first 90% / last 10% of the corpus.

Loading never trains: a missing or stale checkpoint is an error that names `python -m qcore.models.train`.
The Model carries its task (`task(ref_tensors, tensors)`, float tensors, deterministic) and
`loss(tensors, step)`, the training loss on the step-th training batch, for QAT.
"""

from __future__ import annotations

import dataclasses
import json
from functools import lru_cache, partial
from pathlib import Path

import torch
from safetensors import safe_open

from ..errors import QcoreError
from .charlm import (
    CORPUS,
    CharLMConfig,
    calib_windows,
    charlm_forward,
    charlm_loss,
    charlm_shapes,
    charlm_task,
    corpus_digest,
    corpus_split,
    eval_windows,
)
from .digits import DigitsConfig, digits_data, digits_forward, digits_loss, digits_split, digits_task
from .model import Model

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"


CONFIGS: dict[str, DigitsConfig | CharLMConfig] = {
    "digits-small": DigitsConfig(hidden=(128,)),
    "digits-medium": DigitsConfig(hidden=(256, 256)),
    "digits-large": DigitsConfig(hidden=(1024, 1024)),
    "charlm": CharLMConfig(),
}


def describe(cfg: DigitsConfig | CharLMConfig) -> str:
    """One line for a model listing."""
    if isinstance(cfg, DigitsConfig):
        return (
            f"MLP {' -> '.join(map(str, cfg.widths))} (ReLU) trained on scikit-learn's 8x8 digits; "
            f"task: top-1, cross-entropy and same prediction on {cfg.n_test} held-out images"
        )
    return (
        f"char-level transformer LM, {cfg.n_layer} layers, d_model {cfg.d_model}, {cfg.n_head} heads, "
        f"context {cfg.block_size}, trained on Python stdlib docstrings; task: perplexity, KL, same-top"
    )


TRAINED: dict[str, str] = {name: describe(cfg) for name, cfg in CONFIGS.items()}  # name -> description


def checkpoint_path(name: str) -> Path:
    return CHECKPOINT_DIR / f"{name}.safetensors"


def expected_shapes(cfg: DigitsConfig | CharLMConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every weight, in forward order."""
    if isinstance(cfg, CharLMConfig):
        return charlm_shapes(cfg)
    shapes = {}
    for i, (fan_in, fan_out) in enumerate(zip(cfg.widths[:-1], cfg.widths[1:], strict=True), start=1):
        shapes[f"fc{i}.weight"], shapes[f"fc{i}.bias"] = (fan_out, fan_in), (fan_out,)
    return shapes


def load_trained(name: str) -> Model:
    """The trained model `name` from its committed checkpoint (cached). Never trains: a missing or stale
    checkpoint is a QcoreError that says how to rebuild it. The Model carries its task and its training loss."""
    if name not in CONFIGS:
        raise QcoreError(f"unknown trained model '{name}'; choose one of: {', '.join(CONFIGS)}")
    if not checkpoint_path(name).exists():
        raise QcoreError(f"the checkpoint of '{name}' is missing; train it with `python -m qcore.models.train {name}`")
    return _load(name)


def _stale(name: str) -> QcoreError:
    return QcoreError(
        f"checkpoint {checkpoint_path(name)} does not match config '{name}'; "
        f"retrain it with `python -m qcore.models.train {name}`"
    )


@lru_cache(maxsize=8)
def _load(name: str) -> Model:
    """Read the checkpoint, rebuild the inputs, and bind the forward pass, task and loss."""
    cfg = CONFIGS[name]
    shapes = expected_shapes(cfg)
    with safe_open(str(checkpoint_path(name)), framework="pt") as f:
        meta = f.metadata() or {}
        if set(f.keys()) != set(shapes):
            raise _stale(name)
        tensors = {k: f.get_tensor(k).float() for k in shapes}  # forward order, float32
    if any(tuple(t.shape) != shapes[k] for k, t in tensors.items()) or meta.get("config") != config_json(cfg):
        raise _stale(name)
    stats = json.loads(meta.get("stats", "{}"))
    desc = TRAINED[name]
    if isinstance(cfg, DigitsConfig):
        X, y = digits_data()
        mean, std = (torch.tensor(json.loads(meta[k]), dtype=torch.float32) for k in ("input.mean", "input.std"))
        train_idx, test_idx = digits_split(cfg)
        Xs = (X - mean) / std  # (1797, 64) standardised with training statistics
        forward, x_eval, x_calib = digits_forward, Xs[test_idx], Xs[train_idx]
        task = partial(digits_task, x_eval, y[test_idx])
        loss = partial(digits_loss, x_calib, y[train_idx], cfg)
        head, embeddings = (f"fc{len(cfg.widths) - 1}.weight",), ()
    else:
        if meta.get("corpus_sha256") != corpus_digest():
            raise QcoreError(f"{CORPUS} is not the corpus '{name}' was trained on; retrain it")
        x_eval, targets = eval_windows(cfg)
        forward, x_calib = partial(charlm_forward, cfg=cfg), calib_windows(cfg)
        task = partial(charlm_task, x_eval, targets, cfg)
        loss = partial(charlm_loss, corpus_split()[0], cfg)
        head, embeddings = ("lm_head.weight",), ("tok_emb.weight", "pos_emb.weight")
    if stats:
        desc += f" (FP32 held-out: {', '.join(f'{k} {v:.4g}' for k, v in stats.items() if k != 'train_seconds')})"
    fields = dict(forward=forward, eval_inputs=x_eval, calib_inputs=x_calib, task=task, loss=loss)
    return Model(name, tensors, desc, head=head, embeddings=embeddings, **fields)


def config_json(cfg: DigitsConfig | CharLMConfig) -> str:
    """The config as canonical JSON, stored in the checkpoint so a stale file is detected."""
    return json.dumps(dataclasses.asdict(cfg), sort_keys=True)
