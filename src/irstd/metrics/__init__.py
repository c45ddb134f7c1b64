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
* **target precision** = matched predicted components / predicted components; the target recall
  is Pd.

Zero denominators: every ratio whose denominator is 0 is NaN (never a silent 0 or 1). The two F1
scores are computed from counts (``2·TP / (2·TP + FP + FN)``), so they are defined as soon as
anything was predicted or annotated and equal the harmonic mean of P and R whenever both exist.

The work is split as in segmentation_models.pytorch, one module each:

* :mod:`~irstd.metrics.counting`: the pure per-image function :func:`image_counts` gives integer
  :class:`ImageCounts` (the matching is :func:`~irstd.metrics.counting.match_targets`);
* :mod:`~irstd.metrics.reduction`: :func:`reduce_counts` / :func:`reduce_rows` reduce them to a
  :class:`SegResult`;
* :mod:`~irstd.metrics.accumulators`: :class:`SegMetrics` and :class:`ThresholdSweep` accumulate
  over batches, in arrays that can be saved, loaded and merged across processes;
* :mod:`~irstd.metrics.curves`: :class:`SweepResult`, the threshold grid, Pd at a false-alarm level;
* :mod:`~irstd.metrics.ranking`: exact pixel AP and ROC AUC (:class:`PixelScores`);
* :mod:`~irstd.metrics.columns`: how each metric is shown (title, unit, scale: :data:`METRIC_COLUMNS`);
* :mod:`~irstd.metrics.false_alarms`: false alarms on target-free frames ("negatives").
"""

from ..core.components import Components, connected_components
from .accumulators import SegMetrics, ThresholdSweep
from .columns import METRIC_COLUMNS, MetricColumn
from .counting import COUNT_FIELDS, ImageCounts, image_counts
from .curves import SweepResult, auc, logit_thresholds, pd_at
from .false_alarms import NegativeRow, NegativeSummary, count_negative, summarize_by_group, summarize_negatives, worst_frames
from .ranking import PixelScores, average_precision, roc_auc
from .reduction import SegResult, reduce_counts, reduce_rows

__all__ = [
    "COUNT_FIELDS",
    "Components",  # connected components live in core (target extraction uses them too); public here as well
    "connected_components",
    "METRIC_COLUMNS",
    "MetricColumn",
    "ImageCounts",
    "NegativeRow",
    "NegativeSummary",
    "PixelScores",
    "SegResult",
    "SegMetrics",
    "SweepResult",
    "ThresholdSweep",
    "auc",
    "average_precision",
    "count_negative",
    "image_counts",
    "logit_thresholds",
    "pd_at",
    "reduce_counts",
    "reduce_rows",
    "roc_auc",
    "summarize_by_group",
    "summarize_negatives",
    "worst_frames",
]
