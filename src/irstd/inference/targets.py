"""Targets: the connected components of a mask, with centroid, area, box and peak probability.

Fragments of one target (a mask that breaks into pieces across a dim pixel) are merged into one
detection: components whose pixel sets come within ``merge_distance`` pixels (Euclidean distance
between pixel centres, ``<=``) form one target, transitively. :data:`MERGE_DISTANCE` is the default
(measured on SIRST train frames: ``benchmarks/clean_detections.py``, docs/clutter.md); 0 turns
merging off. The metrics (Pd / Fa) do not use this: they count the mask's components as published.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as graph_components

from ..core.components import label_components
from ..core.errors import ConfigError

__all__ = ["MERGE_DISTANCE", "Target", "check_merge_distance", "extract_targets", "merge_groups"]

#: default merge distance in pixels: components whose pixels come this close are one target (0: off)
MERGE_DISTANCE = 3.0


@dataclass
class Target:
    """One detected target: centroid (x = column, y = row, pixels), area, bounding box, peak probability.

    A target merged from fragments has the pixel-weighted centroid of all its pixels, the sum of their
    areas (pixels of the mask; the gaps are not counted), the union of their boxes and the highest peak.
    """

    x: float
    y: float
    area: int
    bbox: tuple[int, int, int, int]  # (x0, y0, x1, y1), inclusive pixel indices
    peak: float

    def as_dict(self) -> dict:
        return asdict(self)


def check_merge_distance(distance: float) -> float:
    """``distance`` as a float, or a ConfigError unless it is finite and >= 0."""
    d = float(distance)
    if not (math.isfinite(d) and d >= 0):
        raise ConfigError(f"merge distance must be a finite number >= 0 (0 = off), got {distance!r}")
    return d


def _offsets(distance: float) -> list[tuple[int, int]]:
    """Half of the (dy, dx) offsets with 0 < dy² + dx² <= distance² (the other half is their negatives)."""
    r = int(math.floor(distance))
    return [(dy, dx) for dy in range(0, r + 1) for dx in range(-r, r + 1)
            if (dy > 0 or dx > 0) and dy * dy + dx * dx <= distance * distance]


def merge_groups(labels: np.ndarray, n: int, distance: float) -> np.ndarray:
    """Group of each component of a label image (H, W) (0 = background, 1..n): components whose pixels
    come within ``distance`` share a group. Returns (n,) int64 group ids 0..g-1, numbered in the order of
    each group's lowest label (raster order kept)."""
    return _groups(labels, np.flatnonzero(labels), n, distance)  # the on pixels' flat indices, raster order


def _groups(labels: np.ndarray, flat: np.ndarray, n: int, distance: float) -> np.ndarray:
    """:func:`merge_groups` from the on pixels' flat indices ``flat`` (P,) of ``labels`` (H, W).

    Each on pixel p is paired with its neighbour p + (dy, dx) for the offsets within ``distance`` (both in the
    frame): the pairs of the whole-frame shifted comparison, found from the P on pixels (a handful in a frame
    of targets) instead of from every pixel of the frame."""
    if n < 2 or distance <= 0:
        return np.arange(n, dtype=np.int64)
    h, w = labels.shape
    rows, cols = np.divmod(flat, w)  # (P,)
    own = labels.ravel()[flat]  # (P,) labels 1..n
    pairs = []
    for dy, dx in _offsets(distance):
        r, c = rows + dy, cols + dx
        inside = (r < h) & (c >= 0) & (c < w)  # dy >= 0: r never falls below 0
        a = own[inside]
        b = labels[r[inside], c[inside]]
        link = (b > 0) & (a != b)
        if link.any():
            pairs.append(np.stack([a[link], b[link]], axis=1))  # (k, 2) label pairs
    if not pairs:
        return np.arange(n, dtype=np.int64)
    ab = np.unique(np.concatenate(pairs) - 1, axis=0)  # (m, 2) zero-based component pairs
    graph = coo_matrix((np.ones(len(ab)), (ab[:, 0], ab[:, 1])), shape=(n, n))
    _, group = graph_components(graph, directed=False)  # (n,) ids in the order of first visit = lowest label
    return group.astype(np.int64)


def extract_targets(prob: np.ndarray, mask: np.ndarray, connectivity: int = 8,
                    merge_distance: float = MERGE_DISTANCE) -> list[Target]:
    """Targets of ``mask`` (H, W): its connected components (the labelling of the metrics' Pd / Fa), with
    those within ``merge_distance`` px of each other merged into one target (0: every component is one)."""
    labels, n = label_components(mask, connectivity)  # the labelling of connected_components
    if n == 0:
        return []
    # everything below works on the P on pixels (raster order), not on the whole frame
    h, w = labels.shape
    flat = np.flatnonzero(labels)  # (P,)
    rows, cols = np.divmod(flat, w)  # (P,)
    comp = labels.ravel()[flat] - 1  # (P,) zero-based component of each pixel
    prob = np.asarray(prob)
    peaks = np.full(n, -np.inf, dtype=np.result_type(prob.dtype, np.float32))
    np.maximum.at(peaks, comp, prob.ravel()[flat])  # (n,) highest probability of each component
    boxes = np.empty((n, 4), dtype=np.int64)  # (n, 4) x0, y0, x1, y1, inclusive
    boxes[:, :2], boxes[:, 2:] = np.iinfo(np.int64).max, -1
    np.minimum.at(boxes[:, 0], comp, cols)
    np.minimum.at(boxes[:, 1], comp, rows)
    np.maximum.at(boxes[:, 2], comp, cols)
    np.maximum.at(boxes[:, 3], comp, rows)
    group = _groups(labels, flat, n, merge_distance)  # (n,)
    g = int(group.max()) + 1
    pixel_group = group[comp]  # (P,)
    area = np.bincount(pixel_group, minlength=g)  # (g,)
    # pixel-weighted centroids, summed as connected_components sums them (an unmerged target is unchanged)
    cy = np.bincount(pixel_group, weights=rows, minlength=g) / area
    cx = np.bincount(pixel_group, weights=cols, minlength=g) / area
    targets = []
    for k in range(g):
        members = group == k
        b = boxes[members]
        bbox = (int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max()))
        targets.append(Target(float(cx[k]), float(cy[k]), int(area[k]), bbox, float(peaks[members].max())))
    return targets
