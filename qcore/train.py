"""Training for the models in qcore.trained, and the LM corpus build. CPU only, seeded, a few minutes at most.

    python -m qcore.train digits    # digits-small, digits-medium, digits-large (seconds)
    python -m qcore.train charlm    # the character LM (a few minutes on 2 cores)
    python -m qcore.train corpus    # rebuild data/stdlib_docstrings.txt from this Python's standard library

Each run writes qcore/checkpoints/NAME.safetensors atomically (temp file, then rename). Progress goes to a
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
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import QcoreError
from .trained import (
    CHECKPOINT_DIR,
    CONFIGS,
    CORPUS,
    VOCAB,
    CharLMConfig,
    DigitsConfig,
    Progress,
    charlm_forward,
    charlm_shapes,
    charlm_task,
    checkpoint_path,
    config_json,
    corpus_digest,
    corpus_split,
    digits_data,
    digits_forward,
    digits_split,
    digits_task,
    eval_windows,
    expected_shapes,
)

# ---- digits -----------------------------------------------------------------------------------------------


def train_digits(cfg: DigitsConfig, progress: Progress | None = None) -> tuple[dict, dict, list[float]]:
    """Train the MLP with AdamW on the training split. Returns (tensors, metadata, per-epoch mean loss)."""
    X, y = digits_data()
    train_idx, test_idx = digits_split(cfg)
    mean = X[train_idx].mean(0)  # (64,)
    std = X[train_idx].std(0).clamp(min=1e-2)  # (64,); border pixels are always 0: std 0 -> a safe 1e-2
    Xs = (X - mean) / std  # (1797, 64)
    gen = torch.Generator().manual_seed(cfg.seed)
    tensors = {}
    for name, shape in expected_shapes(cfg).items():
        bound = shape[-1] ** -0.5 if name.endswith("weight") else 0.0  # Kaiming-uniform-like, zero biases
        tensors[name] = ((torch.rand(shape, generator=gen) * 2 - 1) * bound).requires_grad_()
    opt = torch.optim.AdamW(tensors.values(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_idx) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch)
    losses = []
    for epoch in range(cfg.epochs):
        order = train_idx[torch.randperm(len(train_idx), generator=gen)]
        total = 0.0
        for batch in order.split(cfg.batch_size):
            loss = F.cross_entropy(digits_forward(tensors, Xs[batch]), y[batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(batch)
        losses.append(total / len(train_idx))
        if progress:
            progress(epoch + 1, cfg.epochs, f"epoch {epoch + 1}: train loss {losses[-1]:.4f}")
    tensors = {k: v.detach() for k, v in tensors.items()}
    meta = {"input.mean": json.dumps(mean.tolist()), "input.std": json.dumps(std.tolist())}
    stats = digits_task(Xs[test_idx], y[test_idx], _fp16(tensors), _fp16(tensors))
    meta["stats"] = json.dumps({"top1": stats["top1"], "train_loss": losses[-1]})
    return tensors, meta, losses


# ---- character LM -----------------------------------------------------------------------------------------


def init_charlm(cfg: CharLMConfig, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """GPT-2 initialisation: N(0, 0.02) weights, residual projections scaled by 1/sqrt(2 n_layer), LN 1 and 0."""
    tensors = {}
    for name, shape in charlm_shapes(cfg).items():
        if name.endswith("ln1.weight") or name.endswith("ln2.weight") or name == "ln_f.weight":
            t = torch.ones(shape)
        elif len(shape) == 1:
            t = torch.zeros(shape)
        else:
            std = 0.02 / math.sqrt(2 * cfg.n_layer) if name.endswith("proj.weight") else 0.02
            t = torch.randn(shape, generator=gen) * std
        tensors[name] = t.requires_grad_()
    return tensors


def lr_at(step: int, cfg: CharLMConfig) -> float:
    """Linear warm-up to cfg.lr, then cosine decay to cfg.lr / 10 at the last step."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def train_charlm(cfg: CharLMConfig, progress: Progress | None = None) -> tuple[dict, dict, list[float]]:
    """Train the LM on random windows of the training split. Returns (tensors, metadata, per-step loss)."""
    train = corpus_split()[0]
    gen = torch.Generator().manual_seed(cfg.seed)
    tensors = init_charlm(cfg, gen)
    decay = [t for t in tensors.values() if t.dim() >= 2]
    no_decay = [t for t in tensors.values() if t.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99))
    forward = partial(charlm_forward, cfg=cfg)
    losses = []
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        starts = torch.randint(0, len(train) - cfg.block_size - 1, (cfg.batch_size,), generator=gen)
        w = train[starts.unsqueeze(1) + torch.arange(cfg.block_size + 1)]  # (B, T + 1)
        logits = forward(tensors, w[:, :-1])  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, cfg.vocab_size), w[:, 1:].reshape(-1))
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tensors.values(), 1.0)
        opt.step()
        losses.append(loss.item())
        if progress and (step % 25 == 0 or step == cfg.steps - 1):
            msg = f"step {step + 1}: train loss {loss.item():.4f} ({time.perf_counter() - t0:.0f} s)"
            progress(step + 1, cfg.steps, msg)
    tensors = {k: v.detach() for k, v in tensors.items()}
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
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def train_and_save(name: str, progress: Progress | None = None, folder: Path = CHECKPOINT_DIR) -> dict:
    """Train `name` from its config and write folder/NAME.safetensors. Returns the stats stored in the file."""
    if name not in CONFIGS:
        raise QcoreError(f"unknown trained model '{name}'; choose one of: {', '.join(CONFIGS)}")
    cfg = CONFIGS[name]
    t0 = time.perf_counter()
    train = train_digits if isinstance(cfg, DigitsConfig) else train_charlm
    tensors, meta, _ = train(cfg, progress)
    stats = {**json.loads(meta["stats"]), "train_seconds": time.perf_counter() - t0}
    meta.update(config=config_json(cfg), stats=json.dumps(stats), torch=torch.__version__)
    path = folder / checkpoint_path(name).name
    save_checkpoint(path, tensors, meta)
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
    choices = [*GROUPS, *CONFIGS, "corpus"]
    if len(args) != 1 or args[0] not in choices:
        print(f"usage: python -m qcore.train {{{'|'.join(choices)}}}", file=sys.stderr)
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
