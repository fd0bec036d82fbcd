"""Accuracy extrapolation: a method's SQNR against row length, fitted on measured layers and back-tested."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import QcoreError
from ..measure.pipeline import run
from ..models.policy import Policy
from ..models.presets import load_preset
from ..progress import Progress
from .archs import Arch
from .sizing import role


def selected(policy: Policy, t) -> bool:
    """Whether the policy quantizes an architecture tensor (name, kind, shape)."""
    return policy.decide(t.name, t.shape, role(t.kind)) == "quantize"


@dataclass(frozen=True)
class AccuracyFit:
    """SQNR (dB) of a method against row length n, fitted as a + b * log10(ln n) over measured layers.

    The form follows min-max quantization of Gaussian rows, whose range grows like sqrt(2 ln n), so
    its noise grows like ln n; methods whose error does not depend on n fit b ~ 0.
    """

    method: str
    options: tuple
    a: float
    b: float
    residual_db: float  # RMS residual of the fit over the measured layers
    backtest_db: float  # fit on all but the largest preset, error predicting the largest (dB)
    backtest_cosine: float  # the same error, in weight cosine
    points: tuple  # (row length, params, sqnr_db) of every measured layer

    def sqnr_at(self, n: int) -> float:
        return self.a + self.b * math.log10(math.log(max(n, 3)))

    @property
    def band_db(self) -> float:
        """Half-width of the uncertainty band: the back-test error plus twice the residual."""
        return abs(self.backtest_db) + 2 * self.residual_db


def _fit(points) -> tuple[float, float, float]:
    xs = [math.log10(math.log(max(n, 3))) for n, _, _ in points]
    ys = [s for _, _, s in points]
    ws = [p for _, p, _ in points]
    sw = sum(ws)
    mx, my = sum(w * x for w, x in zip(ws, xs, strict=True)) / sw, sum(w * y for w, y in zip(ws, ys, strict=True)) / sw
    sxx = sum(w * (x - mx) ** 2 for w, x in zip(ws, xs, strict=True))
    b = sum(w * (x - mx) * (y - my) for w, x, y in zip(ws, xs, ys, strict=True)) / sxx if sxx > 0 else 0.0
    a = my - b * mx
    res = math.sqrt(sum(w * (y - a - b * x) ** 2 for w, x, y in zip(ws, xs, ys, strict=True)) / sw)
    return a, b, res


def _combine(pairs) -> float:
    """Cosine of a model from (params, sqnr_db) per tensor, for weights of equal variance."""
    total = sum(p for p, _ in pairs)
    noise = sum(p * 10 ** (-s / 10) for p, s in pairs) / total
    return 1 / math.sqrt(1 + noise)


def fit_accuracy(
    method: str, options: dict | None = None, presets=("small", "medium", "large"), progress: Progress | None = None
) -> AccuracyFit:
    """Measure the presets with the method and fit its SQNR trend; back-test on the largest preset."""
    per_preset = []
    for i, name in enumerate(presets):
        if progress:  # before the work: the label names the preset now being quantized
            progress(i, len(presets), f"{method} on {name}")
        rec = run(load_preset(name), method, options, keep=False).record
        pts = [(math.prod(la["shape"][1:]), la["params"], la["sqnr_db"]) for la in rec["layers"] if la["sqnr_db"]]
        per_preset.append(pts)
    if progress:
        progress(len(presets), len(presets), f"{method} fitted")
    points = [p for pts in per_preset for p in pts]
    if len(points) < 2:
        raise QcoreError(f"too few measured layers to fit '{method}' (its error may be exactly zero)")
    a, b, res = _fit(points)
    head, last = [p for pts in per_preset[:-1] for p in pts], per_preset[-1]
    a0, b0, _ = _fit(head) if len(head) >= 2 else (a, b, 0.0)
    pred = _combine([(p, a0 + b0 * math.log10(math.log(max(n, 3)))) for n, p, _ in last])
    meas = _combine([(p, s) for _, p, s in last])
    pred_db = -10 * math.log10(1 / pred**2 - 1)
    meas_db = -10 * math.log10(1 / meas**2 - 1)
    return AccuracyFit(
        method, tuple(sorted((options or {}).items())), a, b, res, pred_db - meas_db, pred - meas, tuple(points)
    )


def predict_accuracy(fit: AccuracyFit, arch: Arch, policy: Policy) -> dict:
    """Extrapolated weight cosine and SQNR for an architecture's quantized tensors, with a band."""
    pairs = [(math.prod(t.shape), math.prod(t.shape[1:])) for t in arch.tensors() if selected(policy, t)]
    cos = _combine([(p, fit.sqnr_at(n)) for p, n in pairs])
    lo = _combine([(p, fit.sqnr_at(n) - fit.band_db) for p, n in pairs])
    hi = _combine([(p, fit.sqnr_at(n) + fit.band_db) for p, n in pairs])
    return {
        "weight_cosine": cos,
        "weight_cosine_low": lo,
        "weight_cosine_high": hi,
        "sqnr_db": -10 * math.log10(1 / cos**2 - 1),
        "band_db": fit.band_db,
        "backtest_cosine_error": fit.backtest_cosine,
        "backtest_db_error": fit.backtest_db,
        "extrapolated": True,
    }
