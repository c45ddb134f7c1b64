"""False alarms on target-free frames ("negatives"): every predicted pixel and component is false.

Counted with the target metrics' own per-image counts (:func:`~irstd.metrics.counting.image_counts`
against an empty mask, so the same connected components and connectivity): a frame's false-alarm
pixels are its predicted pixels and its false targets are its predicted components.

* ``fa`` = false-alarm pixels / pixels seen, in units of 1e-6 (as the target metrics' Fa);
* ``false_targets_per_frame`` and ``false_targets_per_mp`` (per 10⁶ pixels seen);
* ``frames_with_false_target``: the share of frames with at least one false target.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from ..core.errors import DataError
from .counting import as_2d_bool, check_connectivity, image_counts
from .reduction import ratio

__all__ = ["NegativeRow", "NegativeSummary", "count_negative", "false_targets_per_mp", "summarize_by_group",
           "summarize_negatives", "worst_frames"]


@dataclass(frozen=True)
class NegativeRow:
    """Counts of one target-free frame at one threshold."""

    name: str
    group: str
    n_pixels: int
    fa_pixels: int  #: predicted pixels (all false)
    false_targets: int  #: predicted connected components (all false)

    def as_dict(self) -> dict[str, str | int]:
        return asdict(self)


@dataclass(frozen=True)
class NegativeSummary:
    """False alarms over a set of target-free frames (NaN ratios when nothing was seen)."""

    n_frames: int
    n_pixels: int
    fa_pixels: int
    false_targets: int
    fa: float  #: fa_pixels / n_pixels in units of 1e-6
    false_targets_per_frame: float
    false_targets_per_mp: float  #: false targets per 10⁶ pixels seen
    frames_with_false_target: float  #: share of frames with ≥ 1 false target, in [0, 1]

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def count_negative(name: str, pred: np.ndarray, *, group: str = "", threshold: float | None = None,
                   connectivity: int = 8) -> NegativeRow:
    """Counts of one target-free frame.

    ``pred`` (H, W): a binary map (non-zero = predicted) when ``threshold`` is None, else a
    probability map predicted where ``> threshold`` (the project's rule).
    """
    check_connectivity(connectivity)
    pred = np.asarray(pred)
    if threshold is not None:
        if not pred.dtype.kind == "f":
            raise DataError(f"{name}: a threshold needs a probability map, got dtype {pred.dtype}")
        pred = pred > threshold
    binary = as_2d_bool(pred, name)  # (H, W) bool
    c = image_counts(binary, np.zeros_like(binary), connectivity=connectivity)  # empty mask: all false
    return NegativeRow(name, group, c.n_pixels, c.fa_pixels, c.n_pred_components)


def summarize_negatives(rows: Sequence[NegativeRow]) -> NegativeSummary:
    """Totals of ``rows`` (see the module docstring for each figure)."""
    n_pix = sum(r.n_pixels for r in rows)
    fa_pix = sum(r.fa_pixels for r in rows)
    ft = sum(r.false_targets for r in rows)
    hit = sum(1 for r in rows if r.false_targets > 0)
    n = len(rows)
    return NegativeSummary(
        n_frames=n, n_pixels=n_pix, fa_pixels=fa_pix, false_targets=ft,
        fa=ratio(fa_pix, n_pix) * 1e6 if n_pix else math.nan,
        false_targets_per_frame=ratio(ft, n), false_targets_per_mp=ratio(ft, n_pix) * 1e6 if n_pix else math.nan,
        frames_with_false_target=ratio(hit, n),
    )


def summarize_by_group(rows: Sequence[NegativeRow]) -> dict[str, NegativeSummary]:
    """One :class:`NegativeSummary` per scene group, groups sorted."""
    groups = sorted({r.group for r in rows})
    return {g: summarize_negatives([r for r in rows if r.group == g]) for g in groups}


def worst_frames(rows: Sequence[NegativeRow], k: int = 8) -> list[NegativeRow]:
    """The ``k`` frames with the most false targets, ties broken by false-alarm pixels, then name."""
    return sorted(rows, key=lambda r: (-r.false_targets, -r.fa_pixels, r.name))[:k]


def false_targets_per_mp(fa_components: np.ndarray, n_pixels: int) -> np.ndarray:
    """Per-threshold false targets per 10⁶ pixels: ``(T,)`` component totals over ``n_pixels`` seen."""
    if n_pixels <= 0:
        return np.full(np.shape(fa_components), math.nan)
    return np.asarray(fa_components, dtype=float) / n_pixels * 1e6
