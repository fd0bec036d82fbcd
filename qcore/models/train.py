"""Training for the models in qcore.models.trained, and the LM corpus build. CPU only, seeded, a few minutes at most.

    python -m qcore.models.train digits    # digits-small, digits-medium, digits-large (seconds)
    python -m qcore.models.train charlm    # the character LM (a few minutes on 2 cores)
    python -m qcore.models.train corpus    # rebuild data/stdlib_docstrings.txt from this Python's standard library

Each run writes qcore/models/checkpoints/NAME.safetensors atomically (temp file, then rename). Progress goes to a
callback; only the command line prints, to stderr.
"""

from __future__ import annotations

import ast
import json
import math
import os
import sys
import sysconfig
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import torch

from ..errors import QcoreError
from ..progress import Progress
from .charlm import (
    CORPUS,
    VOCAB,
    CharLMConfig,
    charlm_loss,
    charlm_shapes,
    charlm_task,
    corpus_digest,
    corpus_split,
    eval_windows,
)
from .digits import DigitsConfig, digits_data, digits_loss, digits_split, digits_task
from .trained import CONFIGS, checkpoint_path, config_json, expected_shapes

# ---- digits -----------------------------------------------------------------------------------------------


def fit(
    tensors: dict[str, torch.Tensor],
    loss: Callable[[dict[str, torch.Tensor], int], torch.Tensor],
    steps: int,
    lr: float,
    warmup: int,
    weight_decay: float,
    progress: Progress | None = None,
) -> list[float]:
    """AdamW on loss(tensors, step), updating `tensors` in place. Returns the loss of every step.

    Linear warm-up over `warmup` steps, then cosine decay to lr / 10; weight decay on 2-D tensors only;
    gradients clipped to norm 1.
    """
    params = [t.requires_grad_() for t in tensors.values()]
    groups = [
        {"params": [t for t in params if t.dim() >= 2], "weight_decay": weight_decay},
        {"params": [t for t in params if t.dim() < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99))
    losses, t0 = [], time.perf_counter()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr, warmup)
        value = loss(tensors, step)
        opt.zero_grad(set_to_none=True)
        value.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(value.item())
        if progress and (step % 25 == 0 or step == steps - 1):
            progress(step + 1, steps, f"loss {losses[-1]:.4f} ({time.perf_counter() - t0:.0f} s)")
    for t in params:
        t.requires_grad_(False)
    return losses


def lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up to lr, then cosine decay to lr / 10 at the last step."""
    if step < warmup:
        return lr * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


# ---- digits -----------------------------------------------------------------------------------------------


def train_digits(cfg: DigitsConfig, progress: Progress | None = None) -> tuple[dict, dict, list[float]]:
    """Train the MLP on the training split. Returns (tensors, metadata, the loss of every step)."""
    X, y = digits_data()
    train_idx, test_idx = digits_split(cfg)
    mean = X[train_idx].mean(0)  # (64,)
    std = X[train_idx].std(0).clamp(min=1e-2)  # (64,); border pixels are always 0: std 0 -> a safe 1e-2
    Xs = (X - mean) / std  # (1797, 64)
    gen = torch.Generator().manual_seed(cfg.seed)
    tensors = {}
    for name, shape in expected_shapes(cfg).items():
        bound = shape[-1] ** -0.5 if name.endswith("weight") else 0.0  # uniform(+-1/sqrt(fan_in)), zero biases
        tensors[name] = (torch.rand(shape, generator=gen) * 2 - 1) * bound
    steps = cfg.epochs * math.ceil(len(train_idx) / cfg.batch_size)
    loss = partial(digits_loss, Xs[train_idx], y[train_idx], cfg)
    losses = fit(tensors, loss, steps, cfg.lr, 0, cfg.weight_decay, progress)
    meta = {"input.mean": json.dumps(mean.tolist()), "input.std": json.dumps(std.tolist())}
    stats = digits_task(Xs[test_idx], y[test_idx], _fp16(tensors), _fp16(tensors))
    meta["stats"] = json.dumps({"top1": stats["top1"], "train_loss": sum(losses[-20:]) / 20})
    return tensors, meta, losses


# ---- character LM -----------------------------------------------------------------------------------------


def init_charlm(cfg: CharLMConfig, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """GPT-2 initialisation: N(0, 0.02) weights, residual projections scaled by 1/sqrt(2 n_layer), LN 1 and 0.

    The learned positions start from sinusoids of std 0.02 (Vaswani et al. 2017): relative offsets are then
    linear maps from the start, which shortens the plateau at bigram loss that random positions sit on.
    """
    tensors = {}
    for name, shape in charlm_shapes(cfg).items():
        if name.endswith(("ln1.weight", "ln2.weight")) or name == "ln_f.weight":
            tensors[name] = torch.ones(shape)
        elif len(shape) == 1:
            tensors[name] = torch.zeros(shape)
        elif name == "pos_emb.weight":
            tensors[name] = sinusoids(*shape) * 0.02
        else:
            std = 0.02 / math.sqrt(2 * cfg.n_layer) if name.endswith("proj.weight") else 0.02
            tensors[name] = torch.randn(shape, generator=gen) * std
    return tensors


def sinusoids(n: int, d: int) -> torch.Tensor:
    """(n, d) sin/cos position codes, interleaved, with unit std."""
    angle = torch.arange(n).unsqueeze(1) / 10_000 ** (torch.arange(0, d, 2) / d)  # (n, d/2)
    return torch.stack([angle.sin(), angle.cos()], dim=-1).reshape(n, d) * math.sqrt(2)  # (n, d)


def train_charlm(cfg: CharLMConfig, progress: Progress | None = None) -> tuple[dict, dict, list[float]]:
    """Train the LM on random windows of the training split. Returns (tensors, metadata, the loss of every step)."""
    tensors = init_charlm(cfg, torch.Generator().manual_seed(cfg.seed))
    loss = partial(charlm_loss, corpus_split()[0], cfg)
    losses = fit(tensors, loss, cfg.steps, cfg.lr, cfg.warmup, cfg.weight_decay, progress)
    x, targets = eval_windows(cfg)
    stats = charlm_task(x, targets, cfg, _fp16(tensors), _fp16(tensors))
    meta = {"corpus_sha256": corpus_digest()}
    meta["stats"] = json.dumps({"perplexity": stats["perplexity"], "train_loss": sum(losses[-50:]) / 50})
    return tensors, meta, losses


# ---- checkpoints ------------------------------------------------------------------------------------------


def _fp16(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights as the checkpoint stores them: rounded to float16, held as float32."""
    return {k: v.half().float() for k, v in tensors.items()}


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    """Write float16 weights and string metadata to `path` atomically (a temp file in the folder, then rename)."""
    from safetensors.torch import save

    data = save({k: v.detach().half().contiguous() for k, v in tensors.items()}, metadata=meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; a checkpoint is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def train_and_save(name: str, progress: Progress | None = None) -> dict:
    """Train `name` from its config and write its checkpoint. Returns the stats stored in the file."""
    if name not in CONFIGS:
        raise QcoreError(f"unknown trained model '{name}'; choose one of: {', '.join(CONFIGS)}")
    cfg = CONFIGS[name]
    t0 = time.perf_counter()
    train = train_digits if isinstance(cfg, DigitsConfig) else train_charlm
    tensors, meta, _ = train(cfg, progress)
    stats = {**json.loads(meta["stats"]), "train_seconds": time.perf_counter() - t0}
    meta.update(config=config_json(cfg), stats=json.dumps(stats), torch=torch.__version__)
    save_checkpoint(checkpoint_path(name), tensors, meta)
    return stats


# ---- corpus -----------------------------------------------------------------------------------------------

SKIP_DIRS = {"test", "tests", "idle_test", "idlelib", "lib2to3", "ensurepip", "turtledemo", "site-packages"}
MIN_DOCSTRING = 40  # characters; shorter docstrings ("Return self==value.") are mostly boilerplate


def stdlib_sources(root: Path) -> list[Path]:
    """Every .py file under the standard library root, minus tests and tools, sorted by relative path."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and d != "__pycache__")
        files += [Path(dirpath) / f for f in filenames if f.endswith(".py")]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def docstrings(node: ast.AST) -> Iterator[str]:
    """Docstrings of the module, classes and functions under `node`, in source order (cleaned, dedented)."""
    if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        doc = ast.get_docstring(node, clean=True)
        if doc:
            yield doc
    for child in ast.iter_child_nodes(node):
        yield from docstrings(child)


def normalise(doc: str) -> str:
    """Tabs to 4 spaces, characters outside VOCAB dropped, trailing spaces stripped."""
    doc = "".join(c for c in doc.replace("\t", "    ") if c in VOCAB)
    return "\n".join(line.rstrip() for line in doc.splitlines()).strip()


def build_corpus(root: Path | None = None) -> str:
    """The LM corpus: unique standard-library docstrings of MIN_DOCSTRING+ characters, blank-line separated."""
    root = root or Path(sysconfig.get_paths()["stdlib"])
    seen, parts = set(), []
    for path in stdlib_sources(root):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escapes in old modules: not our concern here
                tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue  # a few files are deliberately invalid (bad syntax or encodings)
        for doc in map(normalise, docstrings(tree)):
            if len(doc) >= MIN_DOCSTRING and doc not in seen:
                seen.add(doc)
                parts.append(doc)
    return "\n\n".join(parts) + "\n"


# ---- command line -----------------------------------------------------------------------------------------

GROUPS = {"digits": ["digits-small", "digits-medium", "digits-large"], "charlm": ["charlm"]}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    choices = list(dict.fromkeys([*GROUPS, *CONFIGS, "corpus"]))
    if len(args) != 1 or args[0] not in choices:
        print(f"usage: python -m qcore.models.train {{{'|'.join(choices)}}}", file=sys.stderr)
        return 2
    if args[0] == "corpus":
        text = build_corpus()
        CORPUS.parent.mkdir(parents=True, exist_ok=True)
        CORPUS.write_text(text, encoding="ascii", newline="\n")
        print(f"wrote {CORPUS}: {len(text)} characters, sha256 {corpus_digest()}", file=sys.stderr)
        return 0
    for name in GROUPS.get(args[0], [args[0]]):
        log = lambda done, total, msg, name=name: print(f"[{name}] {done}/{total} {msg}", file=sys.stderr)
        stats = train_and_save(name, progress=log)
        size = checkpoint_path(name).stat().st_size
        print(f"[{name}] saved {checkpoint_path(name)} ({size} bytes): {json.dumps(stats)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
