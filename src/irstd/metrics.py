"""Segmentation and target-level metrics for infrared small target detection.

Definitions (the project's standard; ``docs/metrics.md`` states them in full):

* a pixel is predicted as target when ``sigmoid(logit) > threshold`` (default 0.5), counted at the
  image's original resolution;
* **IoU** = ΣI / ΣU over the dataset; **nIoU** = mean per-image IoU, skipping images whose mask
  *and* prediction are both empty;
* pixel **precision / recall / F1** from tp, fp, fn summed over the dataset; with accumulated
  counts ``F1 = 2·IoU / (1 + IoU)`` exactly;
* **Pd / Fa** on connected components (8-connected by default): each ground-truth target, in label
  order, takes the first still-unmatched predicted component whose centroid lies at Euclidean
  distance < 3 px; Pd = matched targets / targets; Fa = predicted pixels outside matched
  components / all pixels, reported in units of 1e-6;
* **target precision** = matched predicted components / predicted components; target recall = Pd.

Zero denominators: every ratio whose denominator is 0 is NaN (never a silent 0 or 1). The two F1
scores are computed from counts (``2·TP / (2·TP + FP + FN)``), so they are defined as soon as
anything was predicted or annotated and equal the harmonic mean of P and R whenever both exist.

The work is split as in segmentation_models.pytorch: a pure per-image function
(:func:`image_counts`) gives integer counts, :func:`reduce_counts` reduces them, and
:class:`SegMetrics` accumulates over batches.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from scipy import ndimage

from irstd.errors import ConfigError, DataError

__all__ = [
    "ImageCounts",
    "SegResult",
    "SegMetrics",
    "SweepResult",
    "ThresholdSweep",
    "auc",
    "image_counts",
    "reduce_counts",
    "sweep_counts",
]

log = logging.getLogger(__name__)

_STRUCTURES = {
    4: ndimage.generate_binary_structure(2, 1),  # cross: edge neighbours only
    8: ndimage.generate_binary_structure(2, 2),  # full 3x3: diagonal neighbours too
}


# --------------------------------------------------------------------------------------------
# per-image counts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageCounts:
    """Integer counts of one image at one threshold; :func:`reduce_counts` turns a list into metrics."""

    inter: int  #: |pred ∧ gt| (equals tp)
    union: int  #: |pred ∨ gt|
    tp: int
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
        return self.inter / self.union if self.union else math.nan

    @property
    def skipped_by_niou(self) -> bool:
        """True when nIoU ignores this image (empty mask and empty prediction)."""
        return self.gt_empty and self.pred_empty


@dataclass(frozen=True)
class _Components:
    """Connected components of a binary map: label image, per-component centroids (row, col)."""

    labels: np.ndarray  # (H, W) int32, 0 = background, 1..n = components in raster order
    centroids: np.ndarray  # (n, 2) float64
    n_pixels_on: int

    @property
    def n(self) -> int:
        return len(self.centroids)


def connected_components(mask: np.ndarray, connectivity: int) -> _Components:
    """8- or 4-connected components of a binary map with their centroids (shared by metrics and detection)."""
    labels, n = ndimage.label(mask, structure=_STRUCTURES[connectivity])
    rows, cols = np.nonzero(labels)
    ids = labels[rows, cols]
    # vectorised centroids: per-label coordinate sums / areas (label 0 excluded by nonzero above)
    area = np.bincount(ids, minlength=n + 1)[1:]
    if n:
        cy = np.bincount(ids, weights=rows, minlength=n + 1)[1:] / area
        cx = np.bincount(ids, weights=cols, minlength=n + 1)[1:] / area
        centroids = np.stack([cy, cx], axis=1)
    else:
        centroids = np.zeros((0, 2))
    return _Components(labels=labels, centroids=centroids, n_pixels_on=int(rows.size))


def _check_connectivity(connectivity: int) -> None:
    if connectivity not in _STRUCTURES:
        raise ConfigError(f"connectivity must be 4 or 8, got {connectivity!r}")


def _as_2d_bool(a: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(a)
    while a.ndim > 2 and a.shape[0] == 1:  # (1, H, W) or (1, 1, H, W) -> (H, W)
        a = a[0]
    if a.ndim != 2:
        raise DataError(f"{what}: expected a single image of shape (H, W) or (1, H, W), got {a.shape}")
    return a if a.dtype == np.bool_ else a != 0


def _counts_with_gt(pred: np.ndarray, gt: np.ndarray, gt_cc: _Components, distance: float, connectivity: int) -> ImageCounts:
    """Counts of ``pred`` against ``gt`` whose components ``gt_cc`` were already labelled."""
    tp = int(np.count_nonzero(pred & gt))
    n_pred_on = int(np.count_nonzero(pred))
    n_gt_on = gt_cc.n_pixels_on
    fp, fn = n_pred_on - tp, n_gt_on - tp

    pr_cc = connected_components(pred, connectivity)
    matched_pred = np.zeros(pr_cc.n, dtype=bool)
    n_matched = 0
    if gt_cc.n and pr_cc.n:
        # Greedy and order-dependent, so one target at a time; each row is vectorised over the
        # predicted components (a noisy map can hold tens of thousands: no (n_gt, n_pred) matrix).
        pr_y, pr_x = pr_cc.centroids[:, 0], pr_cc.centroids[:, 1]
        for gy, gx in gt_cc.centroids:
            close = np.hypot(pr_y - gy, pr_x - gx) < distance  # (n_pred,)
            cand = np.flatnonzero(close & ~matched_pred)
            if cand.size:
                matched_pred[cand[0]] = True  # first still-unmatched component in label order
                n_matched += 1
    # Mark the pixels of matched components and count every other predicted pixel; going by
    # label (not by area value) keeps an unmatched blob that happens to have a matched blob's area.
    keep = np.concatenate([[False], matched_pred])  # index by label, label 0 = background
    matched_pixels = int(np.count_nonzero(keep[pr_cc.labels]))
    return ImageCounts(
        inter=tp,
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
    _check_connectivity(connectivity)
    pred, gt = _as_2d_bool(pred, "prediction"), _as_2d_bool(gt, "mask")
    if pred.shape != gt.shape:
        raise DataError(f"prediction of shape {pred.shape} does not match mask of shape {gt.shape}")
    return _counts_with_gt(pred, gt, connected_components(gt, connectivity), distance, connectivity)


def sweep_counts(
    probs: np.ndarray, gt: np.ndarray, thresholds: Sequence[float], *, distance: float = 3.0, connectivity: int = 8
) -> list[ImageCounts]:
    """Counts of one image for each threshold (pixel predicted when ``prob > t``); mask labelled once."""
    _check_connectivity(connectivity)
    probs = np.asarray(probs)
    while probs.ndim > 2 and probs.shape[0] == 1:
        probs = probs[0]
    gt = _as_2d_bool(gt, "mask")
    if probs.shape != gt.shape:
        raise DataError(f"probabilities of shape {probs.shape} do not match mask of shape {gt.shape}")
    gt_cc = connected_components(gt, connectivity)
    return [_counts_with_gt(probs > t, gt, gt_cc, distance, connectivity) for t in thresholds]


# --------------------------------------------------------------------------------------------
# reduction
# --------------------------------------------------------------------------------------------


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan


@dataclass(frozen=True)
class SegResult:
    """Dataset-level metrics. Ratios are fractions in [0, 1] (NaN when undefined); ``fa`` is in 1e-6."""

    iou: float
    niou: float
    precision: float
    recall: float
    f1: float
    pd: float
    fa: float  #: false-alarm pixels / all pixels, in units of 1e-6 (fa = 2.5 means 2.5e-6)
    target_precision: float
    target_recall: float
    target_f1: float
    n_images: int
    n_targets: int
    n_pixels: int
    n_niou_images: int = 0  #: images that entered nIoU (not both empty)

    def as_dict(self) -> dict[str, float | int]:
        """Plain dict of every field (for JSON / logging)."""
        return asdict(self)

    _COLUMNS = (
        ("IoU (%)", "iou", 100.0),
        ("nIoU (%)", "niou", 100.0),
        ("P (%)", "precision", 100.0),
        ("R (%)", "recall", 100.0),
        ("F1 (%)", "f1", 100.0),
        ("Pd (%)", "pd", 100.0),
        ("Fa (1e-6)", "fa", 1.0),
        ("tP (%)", "target_precision", 100.0),
        ("tF1 (%)", "target_f1", 100.0),
    )

    def to_markdown(self, label: str | None = None, *, header: bool = True, digits: int = 2) -> str:
        """A one-row markdown table (header optional, so rows of several results can be stacked).

        Percentages for IoU, nIoU, P, R, F1, Pd and the target-level scores; Fa in units of 1e-6;
        undefined values print as ``n/a``.
        """
        names = [c[0] for c in self._COLUMNS]
        cells = []
        for _, attr, scale in self._COLUMNS:
            v = getattr(self, attr)
            cells.append("n/a" if math.isnan(v) else f"{v * scale:.{digits}f}")
        if label is not None:
            names.insert(0, "model")
            cells.insert(0, label)
        lines = []
        if header:
            lines.append("| " + " | ".join(names) + " |")
            lines.append("|" + "|".join("---" for _ in names) + "|")
        lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def reduce_counts(counts: Sequence[ImageCounts]) -> SegResult:
    """Reduce per-image counts to dataset metrics (see module docstring for the rules)."""
    tp = sum(c.tp for c in counts)
    fp = sum(c.fp for c in counts)
    fn = sum(c.fn for c in counts)
    inter = sum(c.inter for c in counts)
    union = sum(c.union for c in counts)
    n_pixels = sum(c.n_pixels for c in counts)
    n_targets = sum(c.n_targets for c in counts)
    n_matched_t = sum(c.n_matched_targets for c in counts)
    n_pred_cc = sum(c.n_pred_components for c in counts)
    n_matched_p = sum(c.n_matched_preds for c in counts)
    fa_pixels = sum(c.fa_pixels for c in counts)
    per_image_iou = [c.iou for c in counts if not c.skipped_by_niou]
    pd = _ratio(n_matched_t, n_targets)
    return SegResult(
        iou=_ratio(inter, union),
        niou=float(np.mean(per_image_iou)) if per_image_iou else math.nan,
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        # 2tp/(2tp+fp+fn) = 2·IoU/(1+IoU) since IoU = tp/(tp+fp+fn)
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        pd=pd,
        fa=_ratio(fa_pixels, n_pixels) * 1e6,
        target_precision=_ratio(n_matched_p, n_pred_cc),
        target_recall=pd,
        # matched preds == matched targets, so 2PR/(P+R) = 2m/(n_pred + n_targets)
        target_f1=_ratio(n_matched_p + n_matched_t, n_pred_cc + n_targets),
        n_images=len(counts),
        n_targets=n_targets,
        n_pixels=n_pixels,
        n_niou_images=len(per_image_iou),
    )


# --------------------------------------------------------------------------------------------
# input handling shared by the accumulators
# --------------------------------------------------------------------------------------------

ArrayLike = Any  # torch.Tensor | np.ndarray | list of them


def _to_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    return torch.as_tensor(np.asarray(x))


def _squeeze_image(t: torch.Tensor, what: str, index: int) -> torch.Tensor:
    while t.ndim > 2 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 2:
        raise DataError(f"{what} #{index}: expected shape (H, W) or (1, H, W), got {tuple(t.shape)}")
    return t


def _split_images(x: ArrayLike, what: str) -> list[torch.Tensor]:
    """A batch (B,1,H,W) / (B,H,W), a single (H,W) image, or a list of images -> list of (H, W)."""
    if isinstance(x, (list, tuple)):
        return [_squeeze_image(_to_tensor(item), what, i) for i, item in enumerate(x)]
    t = _to_tensor(x)
    if t.ndim == 4:
        if t.shape[1] != 1:
            raise DataError(f"{what}: expected one channel, got shape {tuple(t.shape)}")
        t = t[:, 0]
    if t.ndim == 2:
        return [t]
    if t.ndim != 3:
        raise DataError(f"{what}: expected (B, 1, H, W), (B, H, W), (H, W) or a list of images, got {tuple(t.shape)}")
    return list(t.unbind(0))


def _paired(preds: ArrayLike, masks: ArrayLike) -> list[tuple[torch.Tensor, np.ndarray]]:
    p_list, m_list = _split_images(preds, "predictions"), _split_images(masks, "masks")
    if len(p_list) != len(m_list):
        raise DataError(f"got {len(p_list)} predictions but {len(m_list)} masks")
    out = []
    for i, (p, m) in enumerate(zip(p_list, m_list)):
        if p.shape != m.shape:
            raise DataError(f"image #{i}: prediction of shape {tuple(p.shape)} does not match mask {tuple(m.shape)}")
        out.append((p, (m != 0).cpu().numpy()))
    return out


def _check_inputs(inputs: str) -> None:
    if inputs not in ("logits", "probs"):
        raise ConfigError(f"inputs must be 'logits' or 'probs', got {inputs!r}")


def _probabilities(p: torch.Tensor, inputs: str) -> torch.Tensor:
    if not p.is_floating_point():
        p = p.float()
    return torch.sigmoid(p) if inputs == "logits" else p


# --------------------------------------------------------------------------------------------
# accumulators
# --------------------------------------------------------------------------------------------


class SegMetrics:
    """Accumulate :class:`ImageCounts` over batches; ``compute()`` gives a :class:`SegResult`.

    ``update(preds, masks)`` takes logits (``inputs="logits"``) or probabilities (``"probs"``) as a
    (B,1,H,W) tensor on any device, a numpy array, or a list of variable-size (H,W)/(1,H,W) images
    at their original resolution; masks in the same layout, any non-zero value is target.
    """

    def __init__(self, threshold: float = 0.5, inputs: str = "logits", distance: float = 3.0, connectivity: int = 8) -> None:
        _check_inputs(inputs)
        _check_connectivity(connectivity)
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"threshold is a probability in [0, 1], got {threshold!r}")
        self.threshold = float(threshold)
        self.inputs = inputs
        self.distance = float(distance)
        self.connectivity = connectivity
        self._counts: list[ImageCounts] = []

    def reset(self) -> None:
        """Forget every image seen so far."""
        self._counts = []

    def __len__(self) -> int:
        return len(self._counts)

    @property
    def per_image(self) -> list[ImageCounts]:
        """Counts of every image in update order (a copy)."""
        return list(self._counts)

    @torch.no_grad()
    def update(self, preds: ArrayLike, masks: ArrayLike) -> list[ImageCounts]:
        """Add a batch; returns the new images' counts."""
        new = []
        for p, m in _paired(preds, masks):
            binary = (_probabilities(p, self.inputs) > self.threshold).cpu().numpy()
            new.append(_counts_with_gt(binary, m, connected_components(m, self.connectivity), self.distance, self.connectivity))
        self._counts.extend(new)
        return new

    def compute(self) -> SegResult:
        """Metrics over every image since the last reset (NaN fields when nothing was seen)."""
        if not self._counts:
            log.warning("SegMetrics.compute() called before any update: every metric is NaN")
        return reduce_counts(self._counts)


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

    thresholds: np.ndarray
    results: list[SegResult]
    fpr: np.ndarray  #: pixel false-positive rate fp / (fp + tn)
    precision: np.ndarray = field(init=False)
    recall: np.ndarray = field(init=False)
    pd: np.ndarray = field(init=False)
    fa: np.ndarray = field(init=False)  #: in units of 1e-6

    def __post_init__(self) -> None:
        for name in ("precision", "recall", "pd", "fa"):
            object.__setattr__(self, name, np.array([getattr(r, name) for r in self.results]))

    def roc_auc(self) -> float:
        """Area under the pixel ROC (recall vs fpr), closed with its end points (0, 0) and (1, 1)."""
        return auc(np.r_[0.0, self.fpr, 1.0], np.r_[0.0, self.recall, 1.0])

    def pr_auc(self) -> float:
        """Area under precision vs recall over the swept thresholds (undefined precisions dropped)."""
        return auc(self.recall, self.precision)


class ThresholdSweep:
    """Like :class:`SegMetrics` but for many probability thresholds at once (ROC / Pd-Fa curves)."""

    def __init__(
        self, thresholds: Sequence[float] | None = None, inputs: str = "logits", distance: float = 3.0, connectivity: int = 8
    ) -> None:
        _check_inputs(inputs)
        _check_connectivity(connectivity)
        ts = np.linspace(0.05, 0.95, 19) if thresholds is None else np.asarray(thresholds, dtype=float)
        if ts.ndim != 1 or ts.size == 0 or np.any((ts < 0) | (ts > 1)):
            raise ConfigError(f"thresholds must be a non-empty list of probabilities in [0, 1], got {thresholds!r}")
        self.thresholds = ts
        self.inputs = inputs
        self.distance = float(distance)
        self.connectivity = connectivity
        self._counts: list[list[ImageCounts]] = [[] for _ in ts]

    def reset(self) -> None:
        self._counts = [[] for _ in self.thresholds]

    @torch.no_grad()
    def update(self, preds: ArrayLike, masks: ArrayLike) -> None:
        """Add a batch (same layouts as :meth:`SegMetrics.update`)."""
        for p, m in _paired(preds, masks):
            probs = _probabilities(p, self.inputs)
            gt_cc = connected_components(m, self.connectivity)
            ts = torch.as_tensor(self.thresholds, dtype=probs.dtype, device=probs.device)
            binaries = (probs[None] > ts[:, None, None]).cpu().numpy()  # (T, H, W), one transfer
            for k, b in enumerate(binaries):
                self._counts[k].append(_counts_with_gt(b, m, gt_cc, self.distance, self.connectivity))

    def compute(self) -> SweepResult:
        results = [reduce_counts(c) for c in self._counts]
        fpr = []
        for c in self._counts:
            fp = sum(x.fp for x in c)
            neg = sum(x.n_pixels - x.tp - x.fn for x in c)  # background pixels = fp + tn
            fpr.append(_ratio(fp, neg))
        return SweepResult(thresholds=self.thresholds.copy(), results=results, fpr=np.asarray(fpr))
