"""Small models trained on real data, with task metrics: an MLP on scikit-learn's handwritten digits and a
character-level transformer LM on the Python standard library's docstrings (data/README.md).

Weights live in qcore/models/checkpoints/NAME.safetensors, stored as float16 and upcast to float32 on load, so the
reference model is exactly representable in the FP16 baseline. Everything that is not a weight (the digits'
input standardisation, the config, the corpus digest, the training stats) sits in the file's string metadata,
so `Model.tensors` holds weights only and every ratio counts the same tensors. The splits are fixed: a seeded
permutation of the digits, and the first 90% / last 10% of the corpus.

A task function is `task(ref_tensors, tensors) -> dict of floats`. Either mapping may hold QuantizedTensor
entries, which are dequantized first. It is deterministic: a fixed held-out batch, no sampling. The Model also
carries `loss(tensors, step)`, the training loss on the step-th training batch, for QAT.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import QcoreError
from ..methods.quant import MixedTensor, QuantizedTensor, dequantize
from .presets import Model

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
CORPUS = Path(__file__).resolve().parents[2] / "data" / "stdlib_docstrings.txt"
VOCAB = "\n" + "".join(chr(c) for c in range(32, 127))  # newline + printable ASCII: the corpus alphabet
TRAIN_FRACTION = 0.9  # the LM trains on the first 90% of the corpus and is measured on the rest

Task = Callable[[Mapping, Mapping], dict[str, float]]
Progress = Callable[[int, int, str], None]  # (done, total, label), as in qcore.pipeline


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


@dataclass(frozen=True)
class CharLMConfig:
    """A GPT-style decoder over characters: learned positions, pre-LayerNorm, GELU MLP 4x, untied head."""

    d_model: int = 192  # residual width
    n_layer: int = 4  # transformer blocks
    n_head: int = 4  # attention heads (head size d_model // n_head)
    block_size: int = 128  # context length in characters
    vocab_size: int = len(VOCAB)
    steps: int = 1200  # optimiser steps
    batch_size: int = 8  # windows per step: many small steps beat few large ones on a CPU budget
    lr: float = 2e-3  # AdamW peak learning rate: linear warm-up, then cosine decay to lr / 10
    warmup: int = 50  # warm-up steps
    weight_decay: float = 0.1  # applied to 2-D weights only
    eval_windows: int = 64  # held-out windows in eval_inputs
    calib_windows: int = 32  # training windows in calib_inputs
    seed: int = 0

    def __post_init__(self):
        if self.d_model % self.n_head:
            raise QcoreError(f"d_model {self.d_model} is not divisible by n_head {self.n_head}")


CONFIGS: dict[str, DigitsConfig | CharLMConfig] = {
    "digits-small": DigitsConfig(hidden=(128,)),
    "digits-medium": DigitsConfig(hidden=(256, 256)),
    "digits-large": DigitsConfig(hidden=(1024, 1024)),
    "charlm": CharLMConfig(),
}


def describe(cfg: DigitsConfig | CharLMConfig) -> str:
    """One line for a model listing."""
    if isinstance(cfg, DigitsConfig):
        return f"MLP {' -> '.join(map(str, cfg.widths))} (ReLU) trained on scikit-learn's 8x8 digits; task: top-1"
    return (
        f"char-level transformer LM, {cfg.n_layer} layers, d_model {cfg.d_model}, {cfg.n_head} heads, "
        f"context {cfg.block_size}, trained on Python stdlib docstrings; task: perplexity, KL, same-top"
    )


TRAINED: dict[str, str] = {name: describe(cfg) for name, cfg in CONFIGS.items()}  # name -> description


# ---- digits -----------------------------------------------------------------------------------------------


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
    """Held-out top-1 of `tensors` and of `ref_tensors`, and the mean squared logit difference.

    x: (N, 64) standardised held-out images; labels: (N,) int64.
    """
    with torch.no_grad():
        ref = digits_forward(as_float(ref_tensors), x).double()  # (N, 10)
        got = digits_forward(as_float(tensors), x).double()  # (N, 10)
    return {
        "top1": float((got.argmax(-1) == labels).double().mean()),
        "top1_ref": float((ref.argmax(-1) == labels).double().mean()),
        "logit_mse": float(((got - ref) ** 2).mean()),
    }


# ---- character LM -----------------------------------------------------------------------------------------


def charlm_names(cfg: CharLMConfig) -> list[str]:
    """Tensor names in forward order; linear weights are (out, in), norms and biases 1-D."""
    names = ["tok_emb.weight", "pos_emb.weight"]
    for i in range(cfg.n_layer):
        b = f"blocks.{i}."
        names += [b + "ln1.weight", b + "ln1.bias", b + "attn.qkv.weight", b + "attn.proj.weight"]
        names += [b + "ln2.weight", b + "ln2.bias", b + "mlp.fc.weight", b + "mlp.proj.weight"]
    return names + ["ln_f.weight", "ln_f.bias", "lm_head.weight"]


def charlm_shapes(cfg: CharLMConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape for every tensor, in forward order."""
    d, shapes = cfg.d_model, {}
    for name in charlm_names(cfg):
        if name.endswith(("ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias")) or name.startswith("ln_f."):
            shapes[name] = (d,)
        elif name.endswith("qkv.weight"):
            shapes[name] = (3 * d, d)
        elif name.endswith("attn.proj.weight"):
            shapes[name] = (d, d)
        elif name.endswith("mlp.fc.weight"):
            shapes[name] = (4 * d, d)
        elif name.endswith("mlp.proj.weight"):
            shapes[name] = (d, 4 * d)
        elif name == "pos_emb.weight":
            shapes[name] = (cfg.block_size, d)
        else:  # tok_emb.weight, lm_head.weight
            shapes[name] = (cfg.vocab_size, d)
    return shapes


def _linear(tensors: Mapping, name: str, x: torch.Tensor, capture: dict | None) -> torch.Tensor:
    """x @ W.T for weight `name` (no bias), recording x in `capture` under `name`."""
    if capture is not None:
        capture[name] = x  # (B, T, in)
    return F.linear(x, tensors[name])


def _layer_norm(tensors: Mapping, prefix: str, x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], tensors[prefix + ".weight"], tensors[prefix + ".bias"])


def charlm_forward(
    tensors: Mapping[str, torch.Tensor], idx: torch.Tensor, capture: dict | None = None, *, cfg: CharLMConfig
) -> torch.Tensor:
    """idx (B, T) int64 character ids, T <= block_size -> (B, T, vocab) next-character logits.

    With a dict `capture`, stores the input of every linear layer there as (B, T, in), keyed by its weight name.
    """
    B, T = idx.shape
    nh, hs = cfg.n_head, cfg.d_model // cfg.n_head
    x = tensors["tok_emb.weight"][idx] + tensors["pos_emb.weight"][:T]  # (B, T, d)
    for i in range(cfg.n_layer):
        b = f"blocks.{i}."
        h = _layer_norm(tensors, b + "ln1", x)  # (B, T, d)
        q, k, v = _linear(tensors, b + "attn.qkv.weight", h, capture).split(cfg.d_model, dim=-1)  # 3 x (B, T, d)
        q, k, v = (t.view(B, T, nh, hs).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, cfg.d_model)  # (B, T, d)
        x = x + _linear(tensors, b + "attn.proj.weight", y, capture)
        h = _layer_norm(tensors, b + "ln2", x)
        h = F.gelu(_linear(tensors, b + "mlp.fc.weight", h, capture))  # (B, T, 4d)
        x = x + _linear(tensors, b + "mlp.proj.weight", h, capture)  # (B, T, d)
    return _linear(tensors, "lm_head.weight", _layer_norm(tensors, "ln_f", x), capture)  # (B, T, vocab)


@lru_cache(maxsize=1)
def corpus_ids() -> torch.Tensor:
    """The whole corpus as character ids (n,) int64. Raises QcoreError if the file is missing or off-alphabet."""
    if not CORPUS.exists():
        raise QcoreError(f"the LM corpus {CORPUS} is missing; rebuild it with `python -m qcore.models.train corpus`")
    text = CORPUS.read_bytes()
    table = np.full(256, -1, dtype=np.int64)
    table[np.frombuffer(VOCAB.encode("ascii"), dtype=np.uint8)] = np.arange(len(VOCAB))
    ids = table[np.frombuffer(text, dtype=np.uint8)]
    if (ids < 0).any():
        raise QcoreError(f"{CORPUS} has characters outside the model's alphabet (newline and printable ASCII)")
    return torch.from_numpy(ids)


def corpus_split() -> tuple[torch.Tensor, torch.Tensor]:
    """(train ids, held-out ids): the first TRAIN_FRACTION of the corpus, then the rest."""
    ids = corpus_ids()
    cut = int(len(ids) * TRAIN_FRACTION)
    return ids[:cut], ids[cut:]


def corpus_digest() -> str:
    return hashlib.sha256(CORPUS.read_bytes()).hexdigest()


def windows(ids: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """(len(starts), length) slices of `ids` beginning at each start."""
    return ids[starts.unsqueeze(1) + torch.arange(length)]  # (n, length)


def eval_windows(cfg: CharLMConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets), each (eval_windows, block_size): evenly spaced held-out windows, targets shifted by one."""
    held = corpus_split()[1]
    starts = torch.linspace(0, len(held) - cfg.block_size - 1, cfg.eval_windows).long()  # (n,)
    w = windows(held, starts, cfg.block_size + 1)  # (n, T + 1)
    return w[:, :-1], w[:, 1:]


def calib_windows(cfg: CharLMConfig) -> torch.Tensor:
    """(calib_windows, block_size) seeded random windows from the training split."""
    train = corpus_split()[0]
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    starts = torch.randint(0, len(train) - cfg.block_size, (cfg.calib_windows,), generator=gen)
    return windows(train, starts, cfg.block_size)


def charlm_loss(ids: torch.Tensor, cfg: CharLMConfig, tensors: Mapping, step: int) -> torch.Tensor:
    """Mean next-character cross-entropy (nats) on the step-th batch of windows of `ids`, seeded by the step.

    The training loss, and Model.loss for QAT (which so replays the first training batches).
    """
    gen = torch.Generator().manual_seed(cfg.seed * 100_003 + step)
    starts = torch.randint(0, len(ids) - cfg.block_size, (cfg.batch_size,), generator=gen)  # (B,)
    w = windows(ids, starts, cfg.block_size + 1)  # (B, T + 1)
    logits = charlm_forward(tensors, w[:, :-1], cfg=cfg)  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, cfg.vocab_size), w[:, 1:].reshape(-1))


def charlm_task(
    x: torch.Tensor, targets: torch.Tensor, cfg: CharLMConfig, ref_tensors: Mapping, tensors: Mapping
) -> dict[str, float]:
    """Perplexity of `tensors` and `ref_tensors`, KL(P_ref || P) in nats per character, and the same-top rate.

    x, targets: (B, T) int64 held-out windows and their next characters. Every position is scored (like
    llama.cpp's perplexity tool, but without dropping the first half of each window).
    """
    forward = partial(charlm_forward, cfg=cfg)
    with torch.no_grad():
        ref = F.log_softmax(forward(as_float(ref_tensors), x).double(), dim=-1)  # (B, T, V)
        got = F.log_softmax(forward(as_float(tensors), x).double(), dim=-1)  # (B, T, V)
    nll = lambda logp: float(-logp.gather(-1, targets.unsqueeze(-1)).mean())
    return {
        "perplexity": math.exp(nll(got)),
        "perplexity_ref": math.exp(nll(ref)),
        "kl": float((ref.exp() * (ref - got)).sum(-1).mean()),
        "same_top": float((ref.argmax(-1) == got.argmax(-1)).double().mean()),
    }


# ---- checkpoints and loading ------------------------------------------------------------------------------


def as_float(tensors: Mapping) -> dict[str, torch.Tensor]:
    """{name: float32 tensor}, dequantizing QuantizedTensor and MixedTensor entries."""
    return {k: dequantize(v) if isinstance(v, QuantizedTensor | MixedTensor) else v.float() for k, v in tensors.items()}


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


def load_trained(name: str, progress: Progress | None = None) -> tuple[Model, Task]:
    """The trained model `name` and its task function. Trains and saves the checkpoint first if it is missing.

    The Model carries the same `task`, and `loss(tensors, step)` on training batches for QAT.
    """
    if name not in CONFIGS:
        raise QcoreError(f"unknown trained model '{name}'; choose one of: {', '.join(CONFIGS)}")
    if not checkpoint_path(name).exists():
        from .train import train_and_save  # training code is only needed here

        train_and_save(name, progress=progress)
    return _load(name)


@lru_cache(maxsize=8)
def _load(name: str) -> tuple[Model, Task]:
    """Read the checkpoint, rebuild the inputs, and bind the task function."""
    from safetensors import safe_open

    cfg = CONFIGS[name]
    shapes = expected_shapes(cfg)
    with safe_open(str(checkpoint_path(name)), framework="pt") as f:
        meta = f.metadata() or {}
        if set(f.keys()) != set(shapes):
            raise QcoreError(f"checkpoint {checkpoint_path(name)} does not match config '{name}'; retrain it")
        tensors = {k: f.get_tensor(k).float() for k in shapes}  # forward order, float32
    if any(tuple(t.shape) != shapes[k] for k, t in tensors.items()) or meta.get("config") != config_json(cfg):
        raise QcoreError(f"checkpoint {checkpoint_path(name)} does not match config '{name}'; retrain it")
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
    return Model(name, tensors, desc, head=head, embeddings=embeddings, **fields), task


def config_json(cfg: DigitsConfig | CharLMConfig) -> str:
    """The config as canonical JSON, stored in the checkpoint so a stale file is detected."""
    return json.dumps(dataclasses.asdict(cfg), sort_keys=True)
