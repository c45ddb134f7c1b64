"""The target extraction of before the on-pixel rewrite, kept only to measure the loop as it was.

``benchmarks/track_speed.py --whole-frame-targets`` puts :func:`extract_targets_whole_frame` in the
predictor's place for its "before" rows: scipy's per-label maximum (a sort of the whole frame), the
whole-frame ``find_objects`` and the merge test on 14 shifted copies of the label image. It gives the same
targets as :func:`irstd.inference.targets.extract_targets` (``tests/inference/test_targets.py`` checks the
same computation), only slower.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as graph_components

import irstd.inference.predictor as predictor_mod
from irstd.core.components import connected_components
from irstd.inference.targets import MERGE_DISTANCE, Target, _offsets


def _merge_groups(labels: np.ndarray, n: int, distance: float) -> np.ndarray:
    if n < 2 or distance <= 0:
        return np.arange(n, dtype=np.int64)
    h, w = labels.shape
    pairs = []
    for dy, dx in _offsets(distance):
        if dy >= h or abs(dx) >= w:
            continue
        a = labels[: h - dy, max(0, -dx) : w - max(0, dx)]
        b = labels[dy:, max(0, dx) : w - max(0, -dx)]
        link = (a > 0) & (b > 0) & (a != b)
        if link.any():
            pairs.append(np.stack([a[link], b[link]], axis=1))
    if not pairs:
        return np.arange(n, dtype=np.int64)
    ab = np.unique(np.concatenate(pairs) - 1, axis=0)
    graph = coo_matrix((np.ones(len(ab)), (ab[:, 0], ab[:, 1])), shape=(n, n))
    _, group = graph_components(graph, directed=False)
    return group.astype(np.int64)


def extract_targets_whole_frame(prob: np.ndarray, mask: np.ndarray, connectivity: int = 8,
                                merge_distance: float = MERGE_DISTANCE) -> list[Target]:
    """:func:`irstd.inference.targets.extract_targets` as it was computed before (whole-frame passes)."""
    cc = connected_components(mask, connectivity)
    if cc.n == 0:
        return []
    peaks = ndimage.maximum(prob, cc.labels, np.arange(1, cc.n + 1))
    slices = ndimage.find_objects(cc.labels)
    boxes = np.array([(sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1) for sl in slices])
    group = _merge_groups(cc.labels, cc.n, merge_distance)
    g = int(group.max()) + 1
    rows, cols = np.nonzero(cc.labels)
    pixel_group = group[cc.labels[rows, cols] - 1]
    area = np.bincount(pixel_group, minlength=g)
    cy = np.bincount(pixel_group, weights=rows, minlength=g) / area
    cx = np.bincount(pixel_group, weights=cols, minlength=g) / area
    targets = []
    for k in range(g):
        members = group == k
        b = boxes[members]
        bbox = (int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max()))
        targets.append(Target(float(cx[k]), float(cy[k]), int(area[k]), bbox, float(peaks[members].max())))
    return targets


@contextmanager
def whole_frame_targets(on: bool = True) -> Iterator[None]:
    """Inside the block, :class:`~irstd.inference.Predictor` extracts targets the way it did before."""
    if not on:
        yield
        return
    saved = predictor_mod.extract_targets
    predictor_mod.extract_targets = extract_targets_whole_frame
    try:
        yield
    finally:
        predictor_mod.extract_targets = saved
