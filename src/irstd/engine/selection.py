"""Which validated epoch is the run's best: the rules of ``select_metric`` (docs/training.md).

``iou`` (the default): the highest validation IoU; an equal IoU keeps the earlier epoch.

``pd_then_iou``: the highest validation Pd (share of targets found), equal Pd broken by the higher IoU;
equal on both keeps the earlier epoch. With the starting weights validated as "epoch 0"
(``validate_start``) and a start that finds every target, an epoch is chosen only when it finds them all
too and scores a higher IoU: the rule "beat the start in IoU without losing Pd".

The rules read the log rows the trainer writes (``val_iou``, ``val_pd``, fractions in [0, 1]); a row
without validation, or with a NaN score, never wins.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

__all__ = ["SELECT_METRICS", "improves", "select_epoch"]


def _score(row: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[float, ...] | None:
    """The row's values of ``keys`` (missing: -1, the never-validated start), None when one is NaN."""
    values = tuple(float(row.get(k, -1.0)) for k in keys)
    return None if any(math.isnan(v) for v in values) else values


#: ``select_metric`` value → the log columns compared, most important first (tuples compare in order)
SELECT_METRICS: dict[str, tuple[str, ...]] = {
    "iou": ("val_iou",),
    "pd_then_iou": ("val_pd", "val_iou"),
}


def improves(row: Mapping[str, Any], best: Mapping[str, Any], metric: str = "iou") -> bool:
    """Whether the validated ``row`` beats the ``best`` record so far under ``metric`` (strictly)."""
    keys = SELECT_METRICS[metric]
    if "val_iou" not in row:
        return False
    new, old = _score(row, keys), _score(best, keys)
    if new is None:
        return False
    return old is None or new > old


def select_epoch(rows: Iterable[Mapping[str, Any]], metric: str = "iou") -> Mapping[str, Any] | None:
    """The row ``metric`` picks from a run's log (``log.jsonl`` rows in order), None when none is validated."""
    best: Mapping[str, Any] | None = None
    for row in rows:
        if improves(row, best or {}, metric):  # {}: every column -1, below any validated score
            best = row
    return best
