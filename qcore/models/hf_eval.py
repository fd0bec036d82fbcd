"""Text through a model folder's own tokenizer, and the task metrics of its outputs (hf.py runs the model).

Decoders: perplexity, KL(P_ref || P) and same-top-token on evenly spaced held-out windows. Encoders: embedding
cosine after the model's pooling, Spearman correlation of all pairwise similarities, nearest-neighbour agreement.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import QcoreError
from .charlm import lm_metrics, windows
from .texts import calibration_sentences

MAX_CONFIG_BYTES = 1 << 20
WINDOW = 128  # tokens per decoder window (or the model's context, if shorter)
MAX_SENTENCE_TOKENS = 64  # an encoder sentence is cut to this many tokens
CALIB_SENTENCE_TOKENS = 32  # encoder calibration takes sentences up to this long
Forward = Callable[..., torch.Tensor]


# ---- text through the model's tokenizer --------------------------------------------------------


def load_tokenizer(folder: Path, label: str):
    """The folder's tokenizer.json (the `tokenizers` library: no Python code runs), or None when there is none."""
    path = folder / "tokenizer.json"
    if not path.is_file():
        return None
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:  # the library raises its own exception type
        raise QcoreError(f"{label}: tokenizer.json cannot be read ({str(e)[:120]})") from None
    tok.no_padding()
    tok.no_truncation()
    return tok


def token_ids(tok, text: str) -> torch.Tensor:
    """A long text as one id sequence (n,) int64, without the special tokens a tokenizer may add."""
    return torch.tensor(tok.encode(text, add_special_tokens=False).ids, dtype=torch.int64)


def decoder_windows(ids: torch.Tensor, window: int, count: int) -> torch.Tensor:
    """(count, window + 1) evenly spaced windows of `ids` (inputs and next-token targets)."""
    if len(ids) < window + 2:
        raise QcoreError(f"the evaluation text is only {len(ids)} tokens for this tokenizer")
    starts = torch.linspace(0, len(ids) - window - 1, count).long()
    return windows(ids, starts, window + 1)


def random_windows(ids: torch.Tensor, window: int, count: int, seed: int = 1) -> torch.Tensor:
    """(count, window) seeded random windows of `ids`."""
    gen = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(ids) - window, (count,), generator=gen)
    return windows(ids, starts, window)


def sentence_batch(tok, sentences: list[str]) -> torch.Tensor:
    """(B, T) ids of each sentence with the tokenizer's special tokens, padded with -1, cut to MAX_SENTENCE_TOKENS."""
    rows = [e.ids[:MAX_SENTENCE_TOKENS] for e in tok.encode_batch(sentences)]
    T = max(len(r) for r in rows)
    out = torch.full((len(rows), T), -1, dtype=torch.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
    return out


def pooling_mode(folder: Path) -> str:
    """'cls' where sentence-transformers' 1_Pooling/config.json asks for the CLS token, else 'mean'."""
    try:
        with open(folder / "1_Pooling" / "config.json", "rb") as f:
            doc = json.loads(f.read(MAX_CONFIG_BYTES).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return "mean"
    return "cls" if isinstance(doc, dict) and doc.get("pooling_mode_cls_token") is True else "mean"


def calibration_batch(tok, tokens: int) -> torch.Tensor:
    """Calibration sentences (seeded, from the training split) until they hold `tokens` real tokens. Only
    sentences of at most CALIB_SENTENCE_TOKENS are taken, so padding wastes little of the pass."""
    pool = calibration_sentences(4096)
    lengths = [len(e.ids) for e in tok.encode_batch(pool)]
    short = [(s, n) for s, n in zip(pool, lengths, strict=True) if n <= CALIB_SENTENCE_TOKENS]
    pool, lengths = [s for s, _ in short], [n for _, n in short]
    total, n = 0, 0
    while n < len(pool) and total < tokens:
        total, n = total + lengths[n], n + 1
    return sentence_batch(tok, pool[:n])


def context_length(cfg: dict) -> int:
    return min(WINDOW, cfg.get("n_positions") or cfg.get("max_position_embeddings") or WINDOW)


# ---- task metrics ------------------------------------------------------------------------------


decoder_task = lm_metrics  # perplexity, KL and same-top: the lab's own LMs and model folders alike


def ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 0..n-1 of a 1-D tensor (ties broken by position; similarities of real sentences do not tie)."""
    r = torch.empty_like(x)
    r[x.argsort()] = torch.arange(len(x), dtype=x.dtype)
    return r


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = ranks(a.double()), ranks(b.double())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def encoder_task(forward: Forward, x: torch.Tensor, ref_tensors, tensors) -> dict[str, float]:
    """Embedding cosine (mean over sentences), Spearman correlation of all pairwise similarities, and the rate at
    which each sentence keeps its nearest neighbour."""
    ref = F.normalize(forward(ref_tensors, x).double(), dim=-1)  # (B, d)
    got = F.normalize(forward(tensors, x).double(), dim=-1)
    S_ref, S_got = ref @ ref.T, got @ got.T  # (B, B)
    iu = torch.triu_indices(len(x), len(x), 1)
    eye = torch.eye(len(x), dtype=torch.bool)
    nn_ref = S_ref.masked_fill(eye, -2).argmax(1)
    nn_got = S_got.masked_fill(eye, -2).argmax(1)
    return {
        "embedding_cosine": float((ref * got).sum(-1).mean()),
        "spearman": spearman(S_ref[iu[0], iu[1]], S_got[iu[0], iu[1]]),
        "nn_agreement": float((nn_ref == nn_got).double().mean()),
    }
