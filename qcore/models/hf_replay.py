"""Calibration passes that do not recompute finished blocks.

Calibration runs one forward pass per linear layer, each stopping at its layer, on a model whose earlier layers are
already quantized (GPTQ's order). Left alone, the pass for a layer in block i recomputes blocks 0..i-1 every time,
so a model of L blocks costs O(L^2) block evaluations. A block whose weights, and every weight before it, are the
very same tensor objects as in an earlier pass on the very same inputs gives the same output: the deepest such
block's output is kept and given again (its earlier blocks return it too, and the block after ignores what they
return), so calibration costs O(L) block evaluations. Results are bit for bit those of full passes (tested).

Identity is checked through weak references: the cache keeps no tensor alive, and a freed tensor can never pass
for its replacement. Only the one output is held, and it is dropped by any pass that is not a calibration pass.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch


@dataclass
class Kept:
    block: int
    refs: list[weakref.ref]  # the tensors block's output depends on, as they were
    x: weakref.ref  # the inputs of that pass
    output: object  # what the block returned


def blocks_of(module: torch.nn.Module) -> tuple[str, torch.nn.ModuleList] | None:
    """The model's repeated blocks: the nn.ModuleList holding the most parameters (with 2 or more entries)."""
    lists = [(n, m) for n, m in module.named_modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 1]
    if not lists:
        return None
    return max(lists, key=lambda nm: sum(p.numel() for p in nm[1].parameters()))


class BlockReplay:
    """Keeps the output of the deepest block a calibration pass finished, and gives it again while it is valid."""

    def __init__(self, module: torch.nn.Module, names: Mapping[str, str]):
        """names: module parameter name -> the checkpoint tensor it is loaded from."""
        found = blocks_of(module)
        self.blocks = list(found[1]) if found else []
        self.upto: list[list[str]] = []  # per block: the tensors its output depends on
        self.block_of: dict[str, int] = {}  # checkpoint tensor -> its block
        self.kept: Kept | None = None
        if not found:
            return
        prefix, before, seen_list = found[0] + ".", [], False
        per_block: list[list[str]] = [[] for _ in self.blocks]
        for k, _ in module.named_parameters():
            if k.startswith(prefix):
                seen_list = True
                j = int(k[len(prefix) :].split(".", 1)[0])
                if k in names:
                    per_block[j].append(names[k])
                    self.block_of[names[k]] = j
            elif not seen_list and k in names:
                before.append(names[k])
            elif k in names:  # after the blocks (a final norm, the head): its pass may replay every block
                self.block_of[names[k]] = len(self.blocks)
        for j in range(len(self.blocks)):
            self.upto.append(before + [n for b in per_block[: j + 1] for n in b])

    def clear(self) -> None:
        self.kept = None

    def _valid(self, tensors: Mapping, x: torch.Tensor, stop: int) -> bool:
        k = self.kept
        if k is None or k.block >= stop or k.x() is not x:
            return False
        return all(r() is tensors.get(n) for r, n in zip(k.refs, self.upto[k.block], strict=True))

    @contextmanager
    def replaying(self, tensors: Mapping, x: torch.Tensor, until: str | None) -> Iterator[None]:
        """Around a calibration pass on inputs `x` that stops at layer `until`: blocks before the kept one's end
        return its output, and the deepest block this pass finishes is kept for the next."""
        stop = self.block_of.get(until) if until is not None else None
        if stop is None or not isinstance(tensors, dict):
            yield
            return
        first = 0
        if self._valid(tensors, x, stop):
            out, j = self.kept.output, self.kept.block
            for b in self.blocks[: j + 1]:
                b.forward = lambda *a, _out=out, _last=b is self.blocks[j], **kw: fresh(_out) if _last else _out
            first = j + 1
        hooks = [self.blocks[j].register_forward_hook(self._keeper(tensors, x, j)) for j in range(first, stop)]
        try:
            yield
        finally:
            for h in hooks:
                h.remove()
            for b in self.blocks[:first]:
                del b.forward

    def _keeper(self, tensors: Mapping, x: torch.Tensor, j: int):
        def keep(module, args, output) -> None:
            refs = [weakref.ref(tensors[n]) for n in self.upto[j]]
            self.kept = Kept(j, refs, weakref.ref(x), fresh(output))  # a copy: the next block may change its input

        return keep


def fresh(out):
    """A copy of a kept block output, so that a block changing its input in place cannot change the kept one."""
    if isinstance(out, torch.Tensor):
        return out.clone()
    if isinstance(out, tuple):
        return type(out)(fresh(v) for v in out) if type(out) is tuple else out
    return out
