"""Text that ships with the repo, for models that read text: the docstring corpus (data/stdlib_docstrings.txt,
split 90/10 into training and held-out text exactly as charlm splits it) and a fixed set of sentences
(data/sentences.txt: 12 topics, 4 sentences each, written for this repo). Evaluation never sees calibration text."""

from __future__ import annotations

import random
import re
from functools import lru_cache
from pathlib import Path

from ..errors import QcoreError

DATA = Path(__file__).resolve().parents[2] / "data"
CORPUS = DATA / "stdlib_docstrings.txt"
SENTENCES = DATA / "sentences.txt"
TRAIN_FRACTION = 0.9  # as charlm: the first 90% trains (and calibrates), the rest is held out


def _read(path: Path) -> str:
    if not path.exists():
        raise QcoreError(f"the text file {path} that ships with the lab is missing")
    return path.read_text(encoding="ascii")


@lru_cache(maxsize=1)
def corpus_text() -> tuple[str, str]:
    """(training text, held-out text) of the docstring corpus."""
    text = _read(CORPUS)
    cut = int(len(text) * TRAIN_FRACTION)
    return text[:cut], text[cut:]


@lru_cache(maxsize=1)
def eval_sentences() -> list[str]:
    """The fixed evaluation sentences, one per line."""
    return [s for s in _read(SENTENCES).splitlines() if s.strip()]


def calibration_sentences(count: int, seed: int = 1) -> list[str]:
    """`count` seeded sentences from the corpus's training split: first sentences of docstrings, 6 to 40 words."""
    paragraphs = re.split(r"\n\s*\n", corpus_text()[0])
    first = [re.split(r"(?<=[.!?])\s", " ".join(p.split()), maxsplit=1)[0] for p in paragraphs]
    pool = [s for s in first if 6 <= len(s.split()) <= 40]
    return random.Random(seed).sample(pool, min(count, len(pool)))
