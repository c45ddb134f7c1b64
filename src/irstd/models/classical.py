"""Classical (training-free) small-target detectors with the learned models' logit interface.

Every detector computes a *score map* per frame (large where a small bright target is likely), then
applies the usual adaptive threshold ``T = mean + k·std`` of that frame's score map and returns

    logits = (score − T) / (std + eps)

so that ``logit > 0 ⇔ score > T`` and the evaluator's standard ``sigmoid(logit) > 0.5`` reproduces
the adaptive rule without special cases. A threshold sweep over ``sigmoid(logit) > t`` is a sweep of
``k`` (``k + log(t / (1 − t))``), which makes ROC curves of these detectors meaningful.

Scale: the score maps here are equivariant to a positive affine change of the input (``a·x + b``,
``a > 0``) — differences, order statistics and products of differences scale by ``a`` or ``a²`` —
and the normalised logits are therefore invariant to it; the ``(x − mean)/std`` normalisation of
the data pipeline changes nothing. Multi-channel inputs are averaged to one channel first.

Detectors: ``tophat`` (white top-hat), ``maxmedian`` (max-median filter), ``mpcm`` (multiscale
patch contrast); ``ipi`` (infrared patch-image model) lives in :mod:`irstd.models.classical_ipi`.
``docs/classical.md`` describes each one, its parameters and its limits.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..core.errors import ConfigError
from ._registry import register_model
from .base import IRSTDModel

__all__ = [
    "ClassicalDetector",
    "TopHat",
    "MaxMedian",
    "MPCM",
    "adaptive_threshold_logits",
    "white_tophat",
    "max_median_background",
    "mpcm_score",
]


def adaptive_threshold_logits(score: torch.Tensor, k: float, eps: float = 1e-6) -> torch.Tensor:
    """Logits ``(score − T)/(std + eps)`` with ``T = mean + k·std`` per frame of a (B, 1, H, W) score map.

    ``logit > 0`` exactly when ``score > T`` (a constant frame gives all-zero logits: no detection).
    """
    mean = score.mean(dim=(-2, -1), keepdim=True)
    std = score.std(dim=(-2, -1), keepdim=True, unbiased=False)
    return (score - (mean + k * std)) / (std + eps)


def _check_odd(name: str, size: int) -> int:
    if int(size) != size or size < 1 or size % 2 == 0:
        raise ConfigError(f"{name} must be an odd positive integer, got {size!r}")
    return int(size)


class ClassicalDetector(IRSTDModel):
    """Base of the training-free detectors: stride 1, no parameters, logits from :meth:`score`.

    Args:
        k: threshold factor of ``T = mean + k·std`` (per frame, on the score map).
    """

    stride = 1

    def __init__(self, in_chans: int = 1, num_classes: int = 1, k: float = 3.0) -> None:
        super().__init__(in_chans, num_classes)
        if num_classes != 1:
            raise ConfigError(f"{type(self).__name__} detects one target class, got num_classes={num_classes}")
        self.k = float(k)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Score map (B, 1, H, W) of a one-channel float frame batch (B, 1, H, W)."""
        raise NotImplementedError

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        frame = x.float().mean(dim=1, keepdim=True)  # (B, 1, H, W)
        logits = adaptive_threshold_logits(self.score(frame), self.k)
        return logits.to(x.dtype) if x.is_floating_point() else logits


# ------------------------------------------------------------------------------------------------
# white top-hat
# ------------------------------------------------------------------------------------------------


def white_tophat(x: torch.Tensor, size: int) -> torch.Tensor:
    """``x − opening(x)`` with a ``size``×``size`` square structuring element; (B, 1, H, W) → same.

    Erosion and dilation are min/max pools over the part of the window inside the frame
    (``max_pool2d`` pads with −∞), so borders are not darkened or brightened by padding.
    """
    pad = size // 2
    eroded = -F.max_pool2d(-x, size, stride=1, padding=pad)
    opened = F.max_pool2d(eroded, size, stride=1, padding=pad)
    return x - opened  # >= 0: the opening never exceeds the image


@register_model("tophat", paper="white top-hat transform (morphological small-target filter)", kind="classical")
class TopHat(ClassicalDetector):
    """White top-hat: bright structures smaller than the ``size``×``size`` square survive.

    ``size`` (default 9) must exceed the largest target's extent; ``k`` defaults to 5.
    """

    def __init__(self, in_chans: int = 1, num_classes: int = 1, size: int = 9, k: float = 5.0) -> None:
        super().__init__(in_chans, num_classes, k)
        self.size = _check_odd("tophat size", size)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return white_tophat(x, self.size)


# ------------------------------------------------------------------------------------------------
# max-median
# ------------------------------------------------------------------------------------------------

# line directions through the window centre: horizontal, vertical, main and anti diagonal
_LINES = ((0, 1), (1, 0), (1, 1), (1, -1))


def max_median_background(x: torch.Tensor, size: int) -> torch.Tensor:
    """Max over the four lines (0°, 90°, 45°, 135°) through each pixel of the median of ``size`` pixels.

    (B, 1, H, W) → (B, 1, H, W); the frame is replicate-padded so every line has ``size`` samples.
    """
    r = size // 2
    h, w = x.shape[-2:]
    padded = F.pad(x, (r, r, r, r), mode="replicate")
    medians = []
    for dy, dx in _LINES:
        # (B, size, H, W): the size samples of this line for every pixel
        shifts = [padded[..., r + t * dy : r + t * dy + h, r + t * dx : r + t * dx + w] for t in range(-r, r + 1)]
        samples = torch.cat(shifts, dim=1)
        medians.append(samples.median(dim=1, keepdim=True).values)
    return torch.stack(medians).amax(dim=0)


@register_model(
    "maxmedian",
    paper="Deshpande et al., Max-mean and max-median filters for detection of small targets, SPIE 1999",
    kind="classical",
)
class MaxMedian(ClassicalDetector):
    """Max-median filter: score = max(0, x − max of the four directional medians of a ``size`` window).

    ``size`` (default 9) should be about twice the target's extent; ``k`` defaults to 8.
    """

    def __init__(self, in_chans: int = 1, num_classes: int = 1, size: int = 9, k: float = 8.0) -> None:
        super().__init__(in_chans, num_classes, k)
        self.size = _check_odd("maxmedian size", size)
        if self.size < 3:
            raise ConfigError(f"maxmedian size must be >= 3, got {size}")

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return (x - max_median_background(x, self.size)).clamp(min=0)


# ------------------------------------------------------------------------------------------------
# multiscale patch contrast measure
# ------------------------------------------------------------------------------------------------

# the eight surrounding cells, ordered so that direction i and i + 4 are opposite
_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


def mpcm_score(x: torch.Tensor, scales: Sequence[int]) -> torch.Tensor:
    """Multiscale patch contrast measure of bright targets, (B, 1, H, W) → (B, 1, H, W).

    At scale L, ``m`` is the L×L mean around each pixel and ``m_i`` the mean of the i-th of the eight
    L×L cells around it; with ``d_i = m − m_i`` the patch contrast is
    ``min_{i=1..4} d_i·d_{i+4}`` where a product counts only when both differences are positive
    (else 0). The result is the maximum over scales. Cells beyond the border repeat the edge cell.
    """
    h, w = x.shape[-2:]
    best = None
    for L in scales:
        m = F.avg_pool2d(x, L, stride=1, padding=L // 2, count_include_pad=False)  # (B, 1, H, W)
        padded = F.pad(m, (L, L, L, L), mode="replicate")
        diffs = [m - padded[..., L + dy * L : L + dy * L + h, L + dx * L : L + dx * L + w] for dy, dx in _NEIGHBOURS]
        pcm = None
        for i in range(4):
            a, b = diffs[i], diffs[i + 4]
            prod = torch.where((a > 0) & (b > 0), a * b, torch.zeros_like(a))
            pcm = prod if pcm is None else torch.minimum(pcm, prod)
        best = pcm if best is None else torch.maximum(best, pcm)
    return best


@register_model(
    "mpcm",
    paper="Wei et al., Multiscale patch-based contrast measure for small infrared target detection, PR 2016",
    kind="classical",
)
class MPCM(ClassicalDetector):
    """Multiscale patch contrast (bright targets) over cell sizes ``scales`` (default 3, 5, 7, 9).

    ``k`` defaults to 8 (the products make the score map heavy-tailed).
    """

    def __init__(
        self, in_chans: int = 1, num_classes: int = 1, scales: Sequence[int] = (3, 5, 7, 9), k: float = 8.0
    ) -> None:
        super().__init__(in_chans, num_classes, k)
        if not scales:
            raise ConfigError("mpcm needs at least one scale")
        self.scales = tuple(_check_odd("mpcm scale", s) for s in scales)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return mpcm_score(x, self.scales)
