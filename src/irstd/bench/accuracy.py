"""Accuracy guards: the fast mode (or an int8 file) vs fp32, masks and metrics on the same frames."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn as nn

from ..core.errors import ConfigError
from ..inference import Predictor
from ..metrics import SegMetrics

__all__ = ["MIN_PIXEL_AGREEMENT", "MAX_IOU_DELTA_POINTS", "INT8_MAX_IOU_DELTA_POINTS", "INT8_MAX_PD_DELTA_POINTS",
           "AgreementResult", "fast_mode_agreement", "mode_agreement", "int8_guard"]

MIN_PIXEL_AGREEMENT = 0.999
#: … and move IoU by at most this many points (percent)
MAX_IOU_DELTA_POINTS = 0.3
#: the int8 guard (issue #19): int8 moves IoU and Pd by at most this many points each
INT8_MAX_IOU_DELTA_POINTS = 1.0
INT8_MAX_PD_DELTA_POINTS = 1.0


@dataclass
class AgreementResult:
    """Fast mode vs fp32 on the same frames: mask agreement and the metrics of each against the masks."""

    n_images: int
    n_pixels: int
    n_disagree: int  #: pixels whose mask differs between the modes
    n_positive_either: int  #: pixels predicted as target by at least one mode
    max_prob_diff: float  #: max |p_fast − p_fp32| over all pixels
    fp32: dict[str, Any]  #: SegResult.as_dict() of fp32 against the ground truth
    fast: dict[str, Any]  #: the same for the compared mode (the fast mode, or int8)
    fast_mode: str  #: label of the compared mode (RunMode label of the fast mode, or the int8 runner's)
    device: str

    @property
    def pixel_agreement(self) -> float:
        """Share of pixels with the same mask value in both modes."""
        return 1.0 - self.n_disagree / self.n_pixels if self.n_pixels else math.nan

    @property
    def positive_agreement(self) -> float:
        """IoU between the two modes' masks (1.0 when neither predicts anything): the agreement that
        background pixels cannot inflate."""
        return 1.0 - self.n_disagree / self.n_positive_either if self.n_positive_either else 1.0

    @property
    def iou_delta_points(self) -> float:
        """IoU(fast) − IoU(fp32) against the ground truth, in points (percent)."""
        return 100.0 * (self.fast["iou"] - self.fp32["iou"])

    @property
    def passed(self) -> bool:
        """Both guard conditions hold (agreement ≥ 99.9 %, |ΔIoU| ≤ 0.3 points)."""
        delta = self.iou_delta_points
        return self.pixel_agreement >= MIN_PIXEL_AGREEMENT and (math.isnan(delta) or abs(delta) <= MAX_IOU_DELTA_POINTS)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pixel_agreement": self.pixel_agreement, "positive_agreement": self.positive_agreement,
                "iou_delta_points": self.iou_delta_points, "passed": self.passed,
                "limits": {"min_pixel_agreement": MIN_PIXEL_AGREEMENT, "max_iou_delta_points": MAX_IOU_DELTA_POINTS}}

    def summary(self) -> str:
        """A few lines for people."""
        return (
            f"{self.n_images} images, {self.n_pixels} pixels on {self.device}; fast = {self.fast_mode}\n"
            f"pixel agreement {100 * self.pixel_agreement:.4f} % ({self.n_disagree} pixels differ; "
            f"agreement on predicted-target pixels {100 * self.positive_agreement:.2f} %), max |Δp| {self.max_prob_diff:.3g}\n"
            f"IoU fp32 {100 * self.fp32['iou']:.2f} %, fast {100 * self.fast['iou']:.2f} % (Δ {self.iou_delta_points:+.2f} points); "
            f"nIoU {100 * self.fp32['niou']:.2f} → {100 * self.fast['niou']:.2f}; Pd {100 * self.fp32['pd']:.2f} → {100 * self.fast['pd']:.2f}; "
            f"Fa {self.fp32['fa']:.2f} → {self.fast['fa']:.2f} (1e-6)\n"
            f"guard (agreement ≥ {100 * MIN_PIXEL_AGREEMENT:g} %, |ΔIoU| ≤ {MAX_IOU_DELTA_POINTS:g} points): "
            f"{'PASSED' if self.passed else 'FAILED'}"
        )


def fast_mode_agreement(
    model: nn.Module,
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    *,
    normalization: tuple[float, float] | None = None,
    device: str | torch.device = "auto",
    threshold: float = 0.5,
    amp: str | None = None,
) -> AgreementResult:
    """Run ``model`` in fp32 and in the fast mode on every (raw frame (H, W), mask (H, W)) pair and
    compare: mask agreement between the modes, and IoU/nIoU/Pd/Fa of each against the masks
    (:class:`irstd.metrics.SegMetrics`, probabilities thresholded at ``threshold``)."""

    ref = Predictor(model, normalization, device=device, threshold=threshold, precision="fp32", batch_size=1)
    fast = Predictor(model, normalization, device=device, threshold=threshold, precision="fast", amp=amp, batch_size=1)
    return mode_agreement(ref, fast, pairs, threshold=threshold)


def int8_guard(result: AgreementResult) -> bool:
    """int8 vs fp32: |ΔIoU| and |ΔPd| each within their limit (points)."""
    d_iou = result.iou_delta_points
    d_pd = 100.0 * (result.fast["pd"] - result.fp32["pd"])
    ok = lambda d, lim: math.isnan(d) or abs(d) <= lim  # noqa: E731
    return ok(d_iou, INT8_MAX_IOU_DELTA_POINTS) and ok(d_pd, INT8_MAX_PD_DELTA_POINTS)


def mode_agreement(
    ref: Predictor, other: Predictor, pairs: Iterable[tuple[np.ndarray, np.ndarray]], *, threshold: float = 0.5
) -> AgreementResult:
    """Compare two predictors of the same network (``ref``: fp32) on (raw frame, mask) pairs, one frame
    at a time at its own size; see :func:`fast_mode_agreement`."""
    fast = other
    m_ref, m_fast = SegMetrics(threshold, inputs="probs"), SegMetrics(threshold, inputs="probs")
    n_img = n_pix = n_dis = n_pos = 0
    max_diff = 0.0
    for frame, mask in pairs:
        p_ref, p_fast = ref.probabilities([frame])[0], fast.probabilities([frame])[0]
        if p_ref.shape != np.shape(mask):
            raise ConfigError(f"image #{n_img}: mask of shape {np.shape(mask)} for a frame of shape {p_ref.shape}")
        b_ref, b_fast = p_ref > threshold, p_fast > threshold
        n_img += 1
        n_pix += b_ref.size
        n_dis += int(np.count_nonzero(b_ref != b_fast))
        n_pos += int(np.count_nonzero(b_ref | b_fast))
        max_diff = max(max_diff, float(np.abs(p_ref - p_fast).max()))
        m_ref.update([p_ref], [mask])
        m_fast.update([p_fast], [mask])
    if n_img == 0:
        raise ConfigError("an accuracy comparison needs at least one image")
    return AgreementResult(n_img, n_pix, n_dis, n_pos, max_diff, m_ref.compute().as_dict(), m_fast.compute().as_dict(),
                           fast.label(), str(ref.device))
