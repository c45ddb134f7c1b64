"""Threshold curves: the sweep's threshold grid, its per-threshold results, and the figures read off them.

The grid (:func:`logit_thresholds`) is even on the logit scale and closed by 0 and 1 and by the
largest float32 below 1, so a curve reaches both ends even when a network saturates (its float32
probabilities are exactly 1.0): at threshold 1 nothing is predicted, at 0 everything is.
:func:`pd_at` reads the Pd an operator gets at a false-alarm level: the best Pd among the grid's
thresholds whose false-alarm figure is at most the level (no interpolation: each value is a
threshold one can set). Threshold-free pixel AP and ROC AUC live in :mod:`irstd.metrics.ranking`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from .reduction import SegResult

__all__ = ["SweepResult", "auc", "logit_thresholds", "pd_at"]

#: the largest float32 below 1: ``prob > this`` keeps exactly the saturated pixels (prob == 1.0)
BELOW_ONE = float(np.nextafter(np.float32(1.0), np.float32(0.0)))


def logit_thresholds(n: int = 33, span: float = 16.0) -> np.ndarray:
    """(T,) probability thresholds: 0, sigmoid of ``n`` logits even in [−span, span], BELOW_ONE, 1.

    Values are unique as float32 (the sweep compares float32 probabilities), ascending.
    """
    logits = np.linspace(-span, span, n)
    ts = np.r_[0.0, 1.0 / (1.0 + np.exp(-logits)), BELOW_ONE, 1.0].astype(np.float32)
    return np.unique(ts).astype(np.float64)


def pd_at(level: float, pd: Iterable[float], x: Iterable[float],
          thresholds: Iterable[float]) -> tuple[float, float]:
    """(best Pd, its lowest threshold) among thresholds whose false-alarm figure ``x`` ≤ ``level``.

    NaN points are ignored; (NaN, NaN) when no threshold reaches the level.
    """
    pds, xs, ts = (np.asarray(list(v), dtype=float) for v in (pd, x, thresholds))
    ok = ~(np.isnan(pds) | np.isnan(xs)) & (xs <= level)
    if not ok.any():
        return math.nan, math.nan
    best = np.nanmax(pds[ok])
    return float(best), float(ts[ok & (pds == best)].min())


def auc(x: Iterable[float], y: Iterable[float]) -> float:
    """Trapezoidal area under ``y(x)`` after sorting by x; points with a NaN coordinate are dropped."""
    xs, ys = np.asarray(list(x), dtype=float), np.asarray(list(y), dtype=float)
    ok = ~(np.isnan(xs) | np.isnan(ys))
    xs, ys = xs[ok], ys[ok]
    if xs.size < 2:
        return math.nan
    order = np.lexsort((ys, xs))  # ties in x: ascending y, so vertical steps integrate to 0 width
    xs, ys = xs[order], ys[order]
    return float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2.0))


@dataclass(frozen=True, eq=False)
class SweepResult:
    """Per-threshold metrics of a :class:`ThresholdSweep`; arrays are aligned with ``thresholds``."""

    thresholds: np.ndarray  # (T,)
    results: list[SegResult]  # T results
    fpr: np.ndarray  #: (T,) pixel false-positive rate fp / (fp + tn)
    precision: np.ndarray = field(init=False)  # (T,)
    recall: np.ndarray = field(init=False)  # (T,)
    pd: np.ndarray = field(init=False)  # (T,)
    fa: np.ndarray = field(init=False)  #: (T,) in units of 1e-6

    def __post_init__(self) -> None:
        for name in ("precision", "recall", "pd", "fa"):
            object.__setattr__(self, name, np.array([getattr(r, name) for r in self.results]))

    def roc_auc(self) -> float:
        """Trapezoidal pixel ROC area over the grid, closed by (0, 0) and (1, 1): a coarse check only;
        the figure of record is :func:`irstd.metrics.ranking.roc_auc` (every distinct score)."""
        return auc(np.r_[0.0, self.fpr, 1.0], np.r_[0.0, self.recall, 1.0])

    def pd_at_fa(self, level: float) -> tuple[float, float]:
        """(best Pd, threshold) with Fa ≤ ``level`` (Fa in units of 1e-6, as :attr:`fa`); see :func:`pd_at`."""
        return pd_at(level, self.pd, self.fa, self.thresholds)
