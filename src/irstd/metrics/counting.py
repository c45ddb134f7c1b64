"""Per-image counts: one binary prediction against one mask, at the original resolution.

:func:`image_counts` is the pure per-image function; the accumulators call :func:`counts_with_gt`
with a mask labelled once. :data:`COUNT_FIELDS` fixes the column order of the count rows the
accumulators keep (``ImageCounts.as_row`` / ``ImageCounts.from_row``).
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass, fields
from typing import Sequence

import numpy as np

from ..core.errors import ConfigError, DataError
from ..core.components import CONNECTIVITIES, Components, connected_components

__all__ = ["COUNT_FIELDS", "ImageCounts", "counts_to_rows", "found_targets", "image_counts", "match_targets"]


@dataclass(frozen=True)
class ImageCounts:
    """Integer counts of one image at one threshold; :func:`reduce_counts` turns a list into metrics."""

    union: int  #: |pred ∨ gt|
    tp: int  #: |pred ∧ gt|
    fp: int
    fn: int
    n_pixels: int  #: H·W of the original (un-padded) image
    n_targets: int  #: ground-truth connected components
    n_matched_targets: int
    n_pred_components: int  #: predicted connected components
    n_matched_preds: int  #: equals n_matched_targets (the matching is one-to-one)
    fa_pixels: int  #: predicted pixels outside matched predicted components
    gt_empty: bool
    pred_empty: bool

    @property
    def iou(self) -> float:
        """This image's IoU; NaN when mask and prediction are both empty."""
        return self.tp / self.union if self.union else math.nan

    @property
    def skipped_by_niou(self) -> bool:
        """True when nIoU ignores this image (empty mask and empty prediction)."""
        return self.gt_empty and self.pred_empty

    def as_row(self) -> np.ndarray:
        """The counts as one int64 row, columns in :data:`COUNT_FIELDS` order (booleans as 0 / 1)."""
        return np.array(astuple(self), dtype=np.int64)  # (F,)

    @classmethod
    def from_row(cls, row: np.ndarray) -> ImageCounts:
        """Inverse of :meth:`as_row`: Python ints and bools again."""
        values = [int(v) for v in row]  # (F,)
        return cls(*values[:-2], bool(values[-2]), bool(values[-1]))


#: column order of a count row (the fields of :class:`ImageCounts`)
COUNT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ImageCounts))


def counts_to_rows(counts: Sequence[ImageCounts]) -> np.ndarray:
    """Per-image counts as an (N, F) int64 array, columns in :data:`COUNT_FIELDS` order."""
    if not counts:
        return np.zeros((0, len(COUNT_FIELDS)), dtype=np.int64)
    return np.stack([c.as_row() for c in counts])


def check_connectivity(connectivity: int) -> None:
    """ConfigError unless ``connectivity`` is 4 or 8."""
    if connectivity not in CONNECTIVITIES:
        raise ConfigError(f"connectivity must be 4 or 8, got {connectivity!r}")


def as_2d_bool(a: np.ndarray, what: str) -> np.ndarray:
    """(H, W), (1, H, W) or (1, 1, H, W) -> (H, W) bool (non-zero = target)."""
    a = np.asarray(a)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise DataError(f"{what}: expected a single image of shape (H, W) or (1, H, W), got {a.shape}")
    return a if a.dtype == np.bool_ else a != 0


def _greedy_match(gt_cc: Components, pr_cc: Components, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """The matching rule: ((n_pred,) bool matched predictions, (n_gt,) bool found targets)."""
    matched = np.zeros(pr_cc.n, dtype=bool)  # (n_pred,)
    found = np.zeros(gt_cc.n, dtype=bool)  # (n_gt,)
    if not (gt_cc.n and pr_cc.n):
        return matched, found
    # Greedy and order-dependent, so one target at a time; each row is vectorised over the
    # predicted components (a noisy map can hold tens of thousands: no (n_gt, n_pred) matrix).
    pr_y, pr_x = pr_cc.centroids[:, 0], pr_cc.centroids[:, 1]  # (n_pred,) each
    for i, (gy, gx) in enumerate(gt_cc.centroids):
        close = np.hypot(pr_y - gy, pr_x - gx) < distance  # (n_pred,)
        cand = np.flatnonzero(close & ~matched)
        if cand.size:
            matched[cand[0]] = True  # first still-unmatched component in label order
            found[i] = True
    return matched, found


def match_targets(gt_cc: Components, pr_cc: Components, distance: float) -> np.ndarray:
    """One-to-one greedy matching; returns (n_pred,) bool, True for matched predicted components.

    Each ground-truth target, in label order, takes the first still-unmatched predicted component
    whose centroid lies at Euclidean distance < ``distance``.
    """
    return _greedy_match(gt_cc, pr_cc, distance)[0]


def found_targets(gt_cc: Components, pr_cc: Components, distance: float) -> np.ndarray:
    """The same matching seen from the targets: (n_gt,) bool, True for each target Pd counts as found."""
    return _greedy_match(gt_cc, pr_cc, distance)[1]


def counts_with_gt(
    pred: np.ndarray, gt: np.ndarray, gt_cc: Components, distance: float, connectivity: int
) -> ImageCounts:
    """Counts of ``pred`` (H, W) bool against ``gt`` (H, W) bool whose components ``gt_cc`` are labelled."""
    tp = int(np.count_nonzero(pred & gt))
    n_pred_on = int(np.count_nonzero(pred))
    n_gt_on = gt_cc.n_pixels_on
    fp, fn = n_pred_on - tp, n_gt_on - tp
    pr_cc = connected_components(pred, connectivity)
    matched_pred = match_targets(gt_cc, pr_cc, distance)  # (n_pred,)
    n_matched = int(np.count_nonzero(matched_pred))
    # Mark the pixels of matched components and count every other predicted pixel; going by
    # label (not by area value) keeps an unmatched blob that happens to have a matched blob's area.
    keep = np.concatenate([[False], matched_pred])  # (n_pred + 1,) indexed by label, 0 = background
    matched_pixels = int(np.count_nonzero(keep[pr_cc.labels]))
    return ImageCounts(
        union=tp + fp + fn,
        tp=tp,
        fp=fp,
        fn=fn,
        n_pixels=int(pred.size),
        n_targets=gt_cc.n,
        n_matched_targets=n_matched,
        n_pred_components=pr_cc.n,
        n_matched_preds=n_matched,
        fa_pixels=n_pred_on - matched_pixels,
        gt_empty=n_gt_on == 0,
        pred_empty=n_pred_on == 0,
    )


def image_counts(pred: np.ndarray, gt: np.ndarray, *, distance: float = 3.0, connectivity: int = 8) -> ImageCounts:
    """Per-image counts of a binary prediction against a binary mask (both (H, W); non-zero = target).

    ``distance``: a predicted component matches a target when their centroids are closer than this
    (strictly, in pixels). ``connectivity``: 4 or 8 for the connected components.
    """
    check_connectivity(connectivity)
    pred, gt = as_2d_bool(pred, "prediction"), as_2d_bool(gt, "mask")
    if pred.shape != gt.shape:
        raise DataError(f"prediction of shape {pred.shape} does not match mask of shape {gt.shape}")
    return counts_with_gt(pred, gt, connected_components(gt, connectivity), distance, connectivity)
