"""A character-level transformer LM on the Python standard library's docstrings (data/README.md): config,
corpus, forward pass, training loss and task metrics (perplexity, KL, same-top). The first 90% of the corpus
trains, the rest is held out."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import QcoreError

CORPUS = Path(__file__).resolve().parents[2] / "data" / "stdlib_docstrings.txt"
VOCAB = "\n" + "".join(chr(c) for c in range(32, 127))  # newline + printable ASCII: the corpus alphabet
TRAIN_FRACTION = 0.9  # the LM trains on the first 90% of the corpus and is measured on the rest


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


LOGIT_CHUNK_BYTES = 2**27  # float64 log-probabilities of one model held at once (128 MiB)


def charlm_task(
    x: torch.Tensor, targets: torch.Tensor, cfg: CharLMConfig, ref_tensors: Mapping, tensors: Mapping
) -> dict[str, float]:
    """Perplexity of `tensors` and `ref_tensors`, KL(P_ref || P) in nats per character, and the same-top rate.

    x, targets: (B, T) int64 held-out windows and their next characters. Every position is scored (like
    llama.cpp's perplexity tool, but without dropping the first half of each window).
    """
    with torch.no_grad():
        return lm_metrics(partial(charlm_forward, cfg=cfg), x, targets, ref_tensors, tensors)


def lm_metrics(forward, x: torch.Tensor, targets: torch.Tensor, ref_tensors: Mapping, tensors: Mapping) -> dict:
    """Perplexity of both, KL(P_ref || P) in nats per token and the same-top-token rate of a language model's
    forward(tensors, x) -> (B, T, V) logits on windows x and their next tokens (every LM the lab runs uses it).

    Windows go through in chunks whose float64 log-probabilities stay under LOGIT_CHUNK_BYTES per model (a real
    vocabulary of 150k tokens would otherwise need gigabytes); the sums are per token, so chunking changes nothing
    but the order of additions."""
    sums = torch.zeros(4, dtype=torch.float64)  # NLL of got, NLL of ref, KL, same top
    start, step = 0, 1  # one window first, to learn the vocabulary size
    while start < len(x):
        xs, ts = x[start : start + step], targets[start : start + step].unsqueeze(-1)
        ref = F.log_softmax(forward(ref_tensors, xs).double(), dim=-1)  # (b, T, V)
        got = F.log_softmax(forward(tensors, xs).double(), dim=-1)
        sums += torch.stack([
            -got.gather(-1, ts).sum(), -ref.gather(-1, ts).sum(),
            (ref.exp() * (ref - got)).sum(), (ref.argmax(-1) == got.argmax(-1)).double().sum(),
        ])  # fmt: skip
        start += step
        step = max(1, LOGIT_CHUNK_BYTES // (8 * ref[0].numel()))
    n = targets.numel()
    return {
        "perplexity": math.exp(sums[0] / n),
        "perplexity_ref": math.exp(sums[1] / n),
        "kl": float(sums[2] / n),
        "same_top": float(sums[3] / n),
    }
