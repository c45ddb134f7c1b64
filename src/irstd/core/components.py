"""Connected components of a binary map, with their centroids and areas.

One labelling for the whole package: the metrics' Pd / Fa matching, the target extraction of the
predictor and the dataset inspection all count targets through :func:`connected_components`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["CONNECTIVITIES", "Components", "connected_components", "label_components"]

_STRUCTURES = {
    4: ndimage.generate_binary_structure(2, 1),  # cross: edge neighbours only
    8: ndimage.generate_binary_structure(2, 2),  # full 3x3: diagonal neighbours too
}

#: the neighbourhoods :func:`connected_components` accepts
CONNECTIVITIES = tuple(_STRUCTURES)


@dataclass(frozen=True)
class Components:
    """Connected components of a binary map: label image, per-component centroids and areas."""

    labels: np.ndarray  # (H, W) int32, 0 = background, 1..n = components in raster order
    centroids: np.ndarray  # (n, 2) float64, (row, col) of each component, in label order
    areas: np.ndarray  # (n,) int64, pixels of each component, in label order
    n_pixels_on: int  #: pixels of all components together

    @property
    def n(self) -> int:
        """Number of components."""
        return len(self.centroids)


def label_components(mask: np.ndarray, connectivity: int = 8) -> tuple[np.ndarray, int]:
    """The label image (H, W) int32 (0 = background, 1..n in raster order) and ``n`` of the 4- or
    8-connected components of a binary (H, W) map (non-zero = on): the labelling of
    :func:`connected_components`, without its centroids and areas."""
    if connectivity not in _STRUCTURES:
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    labels, n = ndimage.label(mask, structure=_STRUCTURES[connectivity])
    return labels, int(n)


def connected_components(mask: np.ndarray, connectivity: int = 8) -> Components:
    """4- or 8-connected components of a binary (H, W) map (non-zero = on) with centroids and areas."""
    labels, n = label_components(mask, connectivity)
    rows, cols = np.nonzero(labels)  # (P,) coordinates of the on pixels, raster order
    ids = labels[rows, cols]  # (P,) their labels, 1..n
    # vectorised centroids: per-label coordinate sums / areas (label 0 excluded by nonzero above)
    area = np.bincount(ids, minlength=n + 1)[1:]  # (n,)
    if n:
        cy = np.bincount(ids, weights=rows, minlength=n + 1)[1:] / area
        cx = np.bincount(ids, weights=cols, minlength=n + 1)[1:] / area
        centroids = np.stack([cy, cx], axis=1)  # (n, 2)
    else:
        centroids = np.zeros((0, 2))
    return Components(labels=labels, centroids=centroids, areas=area.astype(np.int64), n_pixels_on=int(rows.size))
