"""Mixed precision: per-row bit widths from measured sensitivity, under a bits-per-weight budget.

Every candidate width quantizes every row (SEQ half-integer levels, one MSE-searched scale per row),
which measures each row's squared error at each width. Upgrades (b -> b + 1 bits for one row) are
then bought greedily by error removed per bit spent, across all layers at once, until the budget is
spent. The budget is the artifact's real size: FP16 tensors, scales, the per-row widths and the
Parquet container all count, because the allocation is checked against the measured file and
tightened until it fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..errors import QcoreError
from ..progress import Progress
from .common import as_matrix
from .contract import ModelJob
from .quant import MixedTensor, QuantizedTensor
from .seq import SEQ_BITS, SEQConfig, half_zero, quantize_seq

FIT_ROUNDS = 8


@dataclass(frozen=True)
class MixedConfig:
    target_bpw: float = 2.5
    min_bits: int = field(default=2, metadata={"choices": SEQ_BITS})
    max_bits: int = field(default=4, metadata={"choices": SEQ_BITS})

    def __post_init__(self):
        if not self.target_bpw > 0:
            raise QcoreError(f"target_bpw must be positive; got {self.target_bpw}")
        for b in (self.min_bits, self.max_bits):
            if b not in SEQ_BITS:
                raise QcoreError(f"mixed widths must be in {', '.join(map(str, SEQ_BITS))}; got {b}")
        if self.min_bits > self.max_bits:
            raise QcoreError(f"min_bits {self.min_bits} exceeds max_bits {self.max_bits}")


@dataclass
class _Candidates:
    """One tensor quantized at every width: codes per width and each row's squared error."""

    shape: tuple[int, ...]
    in_features: int
    by_bits: dict[int, QuantizedTensor]
    err: dict[int, torch.Tensor]  # bits -> (out,) float64


def _candidates(W: torch.Tensor, cfg: MixedConfig) -> _Candidates:
    W2 = as_matrix(W).float()  # (out, in)
    by_bits, err = {}, {}
    for b in range(cfg.min_bits, cfg.max_bits + 1):
        qt = quantize_seq(W2, SEQConfig(bits=b, group_size=0))
        W_hat = qt.dequantize()  # (out, in)
        by_bits[b] = qt
        err[b] = (W2 - W_hat).double().square().sum(1)  # (out,)
    return _Candidates(tuple(W.shape), W2.shape[1], by_bits, err)


def _allocate(cands: list[_Candidates], cfg: MixedConfig, budget_bits: float) -> list[torch.Tensor]:
    """Per-row widths: start at min_bits, buy the upgrades with the most error removed per bit."""
    gains, costs, owners = [], [], []
    for t, c in enumerate(cands):
        prev_ratio = None
        for b in range(cfg.min_bits, cfg.max_bits):
            gain = (c.err[b] - c.err[b + 1]).clamp(min=0)  # (out,)
            ratio = gain / c.in_features
            if prev_ratio is not None:
                ratio = torch.minimum(ratio, prev_ratio)  # a row's later upgrade never jumps the queue
            prev_ratio = ratio
            gains.append(ratio)
            costs.append(torch.full_like(ratio, c.in_features))
            owners.append(torch.full(ratio.shape, t))
    widths = [torch.full((c.err[cfg.min_bits].shape[0],), cfg.min_bits, dtype=torch.uint8) for c in cands]
    if not gains or budget_bits <= 0:
        return widths
    ratio, cost, owner = torch.cat(gains), torch.cat(costs), torch.cat(owners)
    row = torch.cat([torch.arange(g.shape[0]) for g in gains])
    order = torch.sort(ratio, descending=True, stable=True).indices
    take = order[torch.cumsum(cost[order], 0) <= budget_bits]
    for t in owner[take].unique().tolist():
        rows = row[take][owner[take] == t]
        widths[t] += torch.bincount(rows, minlength=widths[t].shape[0]).to(torch.uint8)
    return widths


def _assemble(c: _Candidates, widths: torch.Tensor) -> MixedTensor:
    parts = {}
    for b, qt in c.by_bits.items():
        rows = widths == b
        if bool(rows.any()):
            out_b = int(rows.sum())
            parts[b] = QuantizedTensor(qt.q[rows], qt.scale[rows], qt.zero, b, 0, (out_b, c.in_features))
    return MixedTensor(widths, parts, c.shape)


def quantize_mixed(
    W: torch.Tensor, cfg: MixedConfig, *, H: torch.Tensor | None = None, progress: Progress | None = None
) -> MixedTensor:
    """One tensor on its own (H is unused): its payload plus scales and widths fit target_bpw x its weights."""
    c = _candidates(W, cfg)
    out = c.err[cfg.min_bits].shape[0]
    overhead = out * (16 + 8)  # a float16 scale and a uint8 width per row
    budget = cfg.target_bpw * out * c.in_features - overhead - cfg.min_bits * out * c.in_features
    return _assemble(c, _allocate([c], cfg, budget)[0])


def floor_items(shapes: dict[str, tuple[int, ...]], bits: int) -> dict[str, MixedTensor]:
    """Every row of every tensor at `bits` with one float16 scale per row: the smallest file mixed can make.

    Codes and scales are placeholders (zeros, ones): without a codec the file's size does not depend on them. A run
    may still store a tensor's scales in float32 (outside float16's range), so this is a lower bound.
    """
    out = {}
    for name, shape in shapes.items():
        rows, cols = shape[0], math.prod(shape[1:])
        part = QuantizedTensor(
            torch.zeros(rows, cols, dtype=torch.uint8), torch.ones(rows, 1, dtype=torch.float16),
            torch.full((1, 1), half_zero(bits), dtype=torch.float16), bits, 0, (rows, cols),
        )  # fmt: skip
        out[name] = MixedTensor(torch.full((rows,), bits, dtype=torch.uint8), {bits: part}, shape)
    return out


def below_floor(cfg: MixedConfig, floor_bpw: float) -> QcoreError:
    return QcoreError(
        f"target_bpw {cfg.target_bpw} is below the smallest file this model allows at {cfg.min_bits} bits: "
        f"{floor_bpw:.3f} bits per weight"
    )


def quantize_mixed_model(job: ModelJob, cfg: MixedConfig) -> dict[str, MixedTensor]:
    """Allocate widths across all selected tensors so the whole artifact file meets target_bpw.

    The kept tensors are stored as FP16; they count towards the file and the parameter total.
    """
    selected, others = job.selected, job.kept
    params = sum(t.numel() for t in selected.values()) + sum(t.numel() for t in others.values())
    target_bytes = cfg.target_bpw * params / 8
    names = list(selected)
    lowest = job.file_bytes({**others, **floor_items({n: tuple(W.shape) for n, W in selected.items()}, cfg.min_bits)})
    if lowest > target_bytes:  # refused before any tensor is quantized (float16 scales: the smallest file)
        raise below_floor(cfg, 8 * lowest / params)
    cands = []
    for i, n in enumerate(names):
        if job.progress:
            job.progress(i, len(names), f"{n}: every row at {cfg.min_bits}-{cfg.max_bits} bits")
        cands.append(_candidates(selected[n], cfg))
    if job.progress:
        job.progress(len(names), len(names), f"allocating widths for {cfg.target_bpw} bits per weight")

    def file_bytes(widths: list[torch.Tensor]) -> tuple[int, dict]:
        items = {n: _assemble(c, w) for n, c, w in zip(names, cands, widths, strict=True)}
        return job.file_bytes({**others, **items}), items

    floor = [torch.full((c.err[cfg.min_bits].shape[0],), cfg.min_bits, dtype=torch.uint8) for c in cands]
    smallest, items = file_bytes(floor)
    if smallest > target_bytes:
        raise below_floor(cfg, 8 * smallest / params)
    budget = 8 * (target_bytes - smallest)  # payload bits available for upgrades
    step = max(c.in_features for c in cands)  # the dearest single upgrade
    for _ in range(FIT_ROUNDS):
        size, trial = file_bytes(_allocate(cands, cfg, budget))
        if size <= target_bytes:
            return trial
        budget -= 8 * (size - target_bytes) + step  # scales, widths and packing grew too: drop an upgrade
    return items  # every row at min_bits, which fits
