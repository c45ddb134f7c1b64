"""Threshold curves: the per-threshold results of a sweep and the trapezoidal area under a curve."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from .reduction import SegResult

__all__ = ["SweepResult", "auc"]


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
        """Area under the pixel ROC (recall vs fpr), closed with its end points (0, 0) and (1, 1)."""
        return auc(np.r_[0.0, self.fpr, 1.0], np.r_[0.0, self.recall, 1.0])

    def pr_auc(self) -> float:
        """Area under precision vs recall over the swept thresholds (undefined precisions dropped)."""
        return auc(self.recall, self.precision)
