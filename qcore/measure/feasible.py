"""Checks that say, before anything is quantized, that a run cannot give a meaningful result, and why.

They read shapes and the policy only (no tensor is quantized), so a page can run them on every rerun and switch its
Run button off with the reason beside it:
- "no_tensors": the policy selects no tensor, so the "quantized" model would be the FP16 one (ratio 1.00x, cosine 1).
- "below_floor": mixed's target_bpw is below the smallest file the model allows with every row at min_bits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..formats.storage import ArtifactWriter
from ..methods.mixed import MixedConfig, below_floor, floor_items
from ..methods.registry import config_dict, get_method
from ..models.model import Model
from ..models.policy import Policy, explain, totals


@dataclass(frozen=True)
class Blocker:
    """Why a run cannot give a meaningful result."""

    reason: str  # "no_tensors" or "below_floor"
    message: str  # one English line, as the CLI would put it
    values: dict = field(default_factory=dict, compare=False)  # the figures a translated message needs


def mixed_floor_bpw(model: Model, policy: Policy, cfg: MixedConfig) -> float:
    """Bits per weight of the smallest file mixed can make with `cfg`: every selected row at min_bits, float16
    scales, labelled with the method and config as stored, and the tensors the policy keeps in FP16. It is the floor
    mixed itself refuses below; a run may still need more (a tensor whose scales need float32).

    Counted one tensor at a time, in model order, as the run writes them; a lazily read tensor is not read.
    """
    label = config_dict(cfg)
    with ArtifactWriter(None, count_only=True) as writer:
        for row in explain(model, policy):
            if row.decision == "quantize":
                floor = floor_items({row.name: row.shape}, cfg.min_bits)[row.name]
                writer.write(row.name, floor.stamped("mixed", label))
            else:
                writer.write(row.name, _kept(model, row.name, row.shape))
    return 8 * writer.stats.file_bytes / max(model.params, 1)


KEPT_WHY = {  # a policy decision, as the message says it
    "1d": "1-D (bias or norm)", "empty": "empty", "head": "output head", "embedding": "embedding",
    "not_included": "not matching the include pattern", "excluded": "matching the exclude pattern",
}  # fmt: skip


def run_blocker(model: Model, method: str, options: dict, policy: Policy, check_floor: bool = True) -> Blocker | None:
    """The first reason a run of `method` with `options` on `model` cannot succeed or would quantize nothing
    (with check_floor=False, only the latter: mixed checks its own floor when it runs)."""
    counts = totals(explain(model, policy))
    if "quantize" not in counts:
        kept = {d: n for d, (n, _) in counts.items()}
        text = ", ".join(f"{n} {KEPT_WHY.get(d, d)}" for d, n in kept.items())
        return Blocker("no_tensors", f"the policy selects no tensor to quantize (kept in FP16: {text})", kept)
    if method == "mixed" and check_floor:
        cfg: MixedConfig = get_method("mixed").make_config(**options)
        floor = mixed_floor_bpw(model, policy, cfg)
        if floor > cfg.target_bpw:
            err = below_floor(cfg, floor)
            return Blocker("below_floor", str(err), {"target": cfg.target_bpw, "floor": floor, "bits": cfg.min_bits})
    return None


def _kept(model: Model, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """A tensor stored in FP16: only its size counts, so a lazily read one is not read. In its place goes a float32
    zero broadcast to its shape (what a lazy model would hand over), which holds no memory of its own."""
    if isinstance(model.tensors, dict):
        return model.tensors[name]
    return torch.zeros(1).expand(shape)
