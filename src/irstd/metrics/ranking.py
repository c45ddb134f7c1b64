"""Threshold-free pixel ranking metrics: average precision and ROC AUC, exact from sorted scores.

Both use every distinct score as a threshold (no grid), as ``sklearn.metrics`` defines them:

* **AP** = Σₖ (Rₖ − Rₖ₋₁)·Pₖ over the distinct scores in descending order (step-wise, no
  interpolation), Pₖ / Rₖ the pixel precision / recall of ``score ≥ sₖ``;
* **ROC AUC** = trapezoidal area under (FPR, TPR) through every distinct score, from (0, 0) to
  (1, 1); equal to P(score of a target pixel > score of a background pixel), ties counted ½.

:class:`PixelScores` keeps the scores of every pixel seen. It ranks logits when given logits: the
sigmoid in float32 saturates to exactly 1.0 above a logit of about 17, which would tie the most
confident pixels and misrank them.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch

from ..core.errors import ConfigError
from .inputs import ArrayLike, check_inputs, paired

__all__ = ["PixelScores", "average_precision", "roc_auc", "ranked_counts"]


def ranked_counts(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative (tp, fp) at each distinct score, descending: ``score ≥ sₖ`` predicted; (K,) each."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    order = np.argsort(-s, kind="mergesort")  # (N,) descending
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # (K,) last index of each run of equal scores
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    return tp, fp


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Step-wise average precision of ``scores`` for binary ``labels``; NaN without any positive."""
    tp, fp = ranked_counts(scores, labels)
    if tp.size == 0 or tp[-1] == 0:
        return math.nan
    recall = tp / tp[-1]
    precision = tp / (tp + fp)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC through every distinct score; NaN unless both classes are present."""
    tp, fp = ranked_counts(scores, labels)
    if tp.size == 0 or tp[-1] == 0 or fp[-1] == 0:
        return math.nan
    tpr, fpr = np.r_[0.0, tp / tp[-1]], np.r_[0.0, fp / fp[-1]]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


class PixelScores:
    """Accumulate every pixel's score and label; ``average_precision()`` / ``roc_auc()`` over all of them.

    ``update(preds, masks)`` takes the layouts of :class:`~irstd.metrics.SegMetrics` (logits or
    probabilities per ``inputs``). Memory: 4 bytes and one bit per pixel seen. ``merge`` appends
    other accumulators' pixels (the metrics do not depend on the order).
    """

    def __init__(self, inputs: str = "logits") -> None:
        check_inputs(inputs)
        self.inputs = inputs
        self._scores: list[np.ndarray] = []  # float32 (P,) per image, ranked as they are
        self._labels: list[np.ndarray] = []  # bool (P,) per image

    def __len__(self) -> int:
        return len(self._scores)

    @torch.no_grad()
    def update(self, preds: ArrayLike, masks: ArrayLike) -> None:
        """Add a batch (a logit ranks like its probability, without the float32 saturation)."""
        for p, m in paired(preds, masks):
            self._scores.append(p.float().cpu().numpy().ravel().astype(np.float32))
            self._labels.append(m.ravel())

    def _all(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._scores:
            return np.zeros(0, np.float32), np.zeros(0, bool)
        return np.concatenate(self._scores), np.concatenate(self._labels)

    def average_precision(self) -> float:
        """Pixel AP over every pixel seen."""
        return average_precision(*self._all())

    def roc_auc(self) -> float:
        """Pixel ROC AUC over every pixel seen."""
        return roc_auc(*self._all())

    def state_dict(self) -> dict[str, Any]:
        """Scores, labels and image lengths as plain arrays (picklable)."""
        s, y = self._all()
        return {"kind": "PixelScores", "inputs": self.inputs, "scores": s, "labels": y,
                "lengths": np.array([a.size for a in self._scores], dtype=np.int64)}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> "PixelScores":
        if state.get("kind") != "PixelScores":
            raise ConfigError(f"a {state.get('kind')!r} state cannot be loaded into a PixelScores")
        acc = cls(state["inputs"])
        cuts = np.cumsum(state["lengths"])[:-1]
        acc._scores = list(np.split(np.asarray(state["scores"], np.float32), cuts)) if len(state["lengths"]) else []
        acc._labels = list(np.split(np.asarray(state["labels"], bool), cuts)) if len(state["lengths"]) else []
        return acc

    def merge(self, *others: "PixelScores") -> "PixelScores":
        """Append the pixels of ``others`` (same ``inputs``); returns self."""
        for o in others:
            if not isinstance(o, PixelScores) or o.inputs != self.inputs:
                raise ConfigError("cannot merge PixelScores of different inputs")
        for o in others:
            self._scores += o._scores
            self._labels += o._labels
        return self
