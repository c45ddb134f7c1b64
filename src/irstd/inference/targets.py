"""Targets: the connected components of a mask, with centroid, area, box and peak probability."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from ..core.components import connected_components

__all__ = ["Target", "extract_targets"]


@dataclass
class Target:
    """One detected target: centroid (x = column, y = row, pixels), area, bounding box, peak probability."""

    x: float
    y: float
    area: int
    bbox: tuple[int, int, int, int]  # (x0, y0, x1, y1), inclusive pixel indices
    peak: float

    def as_dict(self) -> dict:
        return asdict(self)


def extract_targets(prob: np.ndarray, mask: np.ndarray, connectivity: int = 8) -> list[Target]:
    """Connected components of ``mask`` (H, W) as targets (the same labelling as the metrics' Pd/Fa)."""
    cc = connected_components(mask, connectivity)
    if cc.n == 0:
        return []
    index = np.arange(1, cc.n + 1)
    areas = ndimage.sum_labels(np.ones_like(prob), cc.labels, index)
    peaks = ndimage.maximum(prob, cc.labels, index)
    targets = []
    for i, sl in enumerate(ndimage.find_objects(cc.labels)):
        y, x = cc.centroids[i]
        bbox = (sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1)
        targets.append(Target(float(x), float(y), int(areas[i]), tuple(int(v) for v in bbox), float(peaks[i])))
    return targets
