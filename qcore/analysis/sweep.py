"""Analyses over records: method sweeps and the Pareto front."""

from __future__ import annotations

from collections.abc import Sequence

from ..measure.pipeline import run
from ..models.model import Model
from ..models.policy import Policy
from ..progress import Progress


def sweep(
    model: Model, specs: Sequence[tuple[str, dict]], policy: Policy = Policy(), progress: Progress | None = None
) -> list[dict]:
    """Run each (method, options) on one model; returns one record per spec, in order."""
    records = []
    for i, (method, options) in enumerate(specs):
        if progress:  # before the work: the label names the configuration now running
            progress(i, len(specs), f"{method} {options}")
        records.append(run(model, method, options, policy).record)
    return records


def pareto_front(records: Sequence[dict], x: str = "bpw", y: str = "weight_cosine") -> list[bool]:
    """True where no other record has x <= and y >= with one strictly better (small x, large y win).

    Records whose y is None (e.g. output cosine of a model that cannot run) are never on the front.
    """
    pts = [(r[x], r[y]) for r in records]
    front = []
    for i, (xi, yi) in enumerate(pts):
        if yi is None or xi is None:
            front.append(False)
            continue
        dominated = any(
            xj is not None and yj is not None and xj <= xi and yj >= yi and (xj < xi or yj > yi)
            for j, (xj, yj) in enumerate(pts)
            if j != i
        )
        front.append(not dominated)
    return front
