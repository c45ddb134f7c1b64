"""Reduction: per-image count rows -> dataset metrics (:class:`SegResult`).

:func:`reduce_rows` is the one reduction, over an (N, F) array of count rows (columns in
:data:`~irstd.metrics.counting.COUNT_FIELDS` order); :func:`reduce_counts` is the same over a list
of :class:`~irstd.metrics.counting.ImageCounts`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from .columns import METRIC_COLUMNS
from .counting import COUNT_FIELDS, ImageCounts, counts_to_rows

__all__ = ["SegResult", "reduce_counts", "reduce_rows"]

_COL = {name: i for i, name in enumerate(COUNT_FIELDS)}


def ratio(num: float, den: float) -> float:
    """``num / den``, NaN when ``den`` is 0."""
    return num / den if den else math.nan


@dataclass(frozen=True)
class SegResult:
    """Dataset-level metrics. Ratios are fractions in [0, 1] (NaN when undefined); ``fa`` is in 1e-6.

    ``pd`` is the target recall.
    """

    iou: float
    niou: float
    precision: float
    recall: float
    f1: float
    pd: float
    fa: float  #: false-alarm pixels / all pixels, in units of 1e-6 (fa = 2.5 means 2.5e-6)
    target_precision: float
    target_f1: float
    n_images: int
    n_targets: int
    n_pixels: int
    n_niou_images: int = 0  #: images that entered nIoU (not both empty)

    def as_dict(self) -> dict[str, float | int]:
        """Plain dict of every field (for JSON / logging)."""
        return asdict(self)

    def to_markdown(self, label: str | None = None, *, header: bool = True, digits: int = 2) -> str:
        """A one-row markdown table (header optional, so rows of several results can be stacked).

        Percentages for IoU, nIoU, P, R, F1, Pd and the target-level scores; Fa in units of 1e-6;
        undefined values print as ``n/a``.
        """
        names = [c.header for c in METRIC_COLUMNS.values()]
        cells = [c.cell(getattr(self, c.key), digits) for c in METRIC_COLUMNS.values()]
        if label is not None:
            names.insert(0, "model")
            cells.insert(0, label)
        lines = []
        if header:
            lines.append("| " + " | ".join(names) + " |")
            lines.append("|" + "|".join("---" for _ in names) + "|")
        lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _niou(rows: np.ndarray) -> tuple[float, int]:
    """Mean per-image IoU over the images that are not both empty, and how many there are."""
    keep = (rows[:, _COL["gt_empty"]] == 0) | (rows[:, _COL["pred_empty"]] == 0)  # (N,)
    tp, union = rows[keep, _COL["tp"]], rows[keep, _COL["union"]]  # (K,) each
    ious = np.divide(tp, union, out=np.full(tp.shape, np.nan), where=union != 0)  # (K,) float64
    return (float(np.mean(ious)) if ious.size else math.nan), int(ious.size)


def reduce_rows(rows: np.ndarray) -> SegResult:
    """Reduce (N, F) count rows (columns in ``COUNT_FIELDS`` order) to dataset metrics.

    The rules are those of :mod:`irstd.metrics`: sums over the dataset for every ratio, the mean
    per-image IoU for nIoU.
    """
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, len(COUNT_FIELDS))  # (N, F)
    s = {name: int(v) for name, v in zip(COUNT_FIELDS, rows.sum(axis=0))}  # dataset sums, Python ints
    tp, fp, fn = s["tp"], s["fp"], s["fn"]
    niou, n_niou = _niou(rows)
    return SegResult(
        iou=ratio(tp, s["union"]),
        niou=niou,
        precision=ratio(tp, tp + fp),
        recall=ratio(tp, tp + fn),
        # 2tp/(2tp+fp+fn) = 2·IoU/(1+IoU) since IoU = tp/(tp+fp+fn)
        f1=ratio(2 * tp, 2 * tp + fp + fn),
        pd=ratio(s["n_matched_targets"], s["n_targets"]),
        fa=ratio(s["fa_pixels"], s["n_pixels"]) * 1e6,
        target_precision=ratio(s["n_matched_preds"], s["n_pred_components"]),
        # matched preds == matched targets, so 2PR/(P+R) = 2m/(n_pred + n_targets)
        target_f1=ratio(s["n_matched_preds"] + s["n_matched_targets"], s["n_pred_components"] + s["n_targets"]),
        n_images=int(rows.shape[0]),
        n_targets=s["n_targets"],
        n_pixels=s["n_pixels"],
        n_niou_images=n_niou,
    )


def reduce_counts(counts: Sequence[ImageCounts]) -> SegResult:
    """Reduce per-image counts to dataset metrics (see :mod:`irstd.metrics` for the rules)."""
    return reduce_rows(counts_to_rows(counts))
