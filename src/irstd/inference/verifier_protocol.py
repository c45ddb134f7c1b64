"""What the predictor needs from a candidate verifier, and how its answer changes a prediction.

A verifier (e.g. :class:`irstd.verify.Verifier`, a layer above this one) looks at each target in its
frame and says which to keep. The predictor only knows this protocol, so any object with ``keep`` works
and every detector (learned, ONNX, int8, classical) composes with one.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np
from scipy import ndimage

from ..core.components import connected_components
from .targets import MERGE_DISTANCE, Target, merge_groups

__all__ = ["TargetVerifier", "apply_verifier"]


@runtime_checkable
class TargetVerifier(Protocol):
    """Scores candidates in their frame and keeps the targets."""

    def keep(self, frame: np.ndarray, targets: Sequence[Target]) -> np.ndarray:
        """(N,) bool: which of ``targets`` (found in the raw (H, W) ``frame``) are kept."""
        ...


def apply_verifier(verifier: TargetVerifier, frame: np.ndarray, mask: np.ndarray, targets: list[Target],
                   connectivity: int = 8, merge_distance: float = MERGE_DISTANCE) -> tuple[np.ndarray, list[Target]]:
    """(mask without the rejected targets' pixels, kept targets). ``targets`` are the targets of ``mask`` (in
    any order) as :func:`~irstd.inference.targets.extract_targets` found them with the same ``connectivity``
    and ``merge_distance``: a rejected target is the group of components whose joint box is its box."""
    if not targets:
        return mask, targets
    keep = np.asarray(verifier.keep(frame, targets), dtype=bool)
    if keep.shape != (len(targets),):
        raise ValueError(f"a verifier answered {keep.shape} for {len(targets)} targets")
    if keep.all():
        return mask, targets
    cc = connected_components(mask, connectivity)
    group = merge_groups(cc.labels, cc.n, merge_distance)  # (n,) group of each component
    boxes: dict[int, list[int]] = {}  # group -> [x0, y0, x1, y1], the union of its components' boxes
    for i, sl in enumerate(ndimage.find_objects(cc.labels)):
        if sl is None:
            continue
        x0, y0, x1, y1 = sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1
        b = boxes.setdefault(int(group[i]), [x0, y0, x1, y1])
        b[:] = [min(b[0], x0), min(b[1], y0), max(b[2], x1), max(b[3], y1)]
    by_box = {tuple(b): g for g, b in boxes.items()}
    dropped = {by_box[tuple(t.bbox)] for t, k in zip(targets, keep) if not k and tuple(t.bbox) in by_box}
    drop = [i + 1 for i in range(cc.n) if int(group[i]) in dropped]  # component labels 1..n
    return mask & ~np.isin(cc.labels, drop), [t for t, k in zip(targets, keep) if k]
