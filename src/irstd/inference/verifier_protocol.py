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
from .targets import Target

__all__ = ["TargetVerifier", "apply_verifier"]


@runtime_checkable
class TargetVerifier(Protocol):
    """Scores candidates in their frame and keeps the targets."""

    def keep(self, frame: np.ndarray, targets: Sequence[Target]) -> np.ndarray:
        """(N,) bool: which of ``targets`` (found in the raw (H, W) ``frame``) are kept."""
        ...


def apply_verifier(verifier: TargetVerifier, frame: np.ndarray, mask: np.ndarray, targets: list[Target],
                   connectivity: int = 8) -> tuple[np.ndarray, list[Target]]:
    """(mask without the rejected components, kept targets). ``targets`` are the components of ``mask`` (in
    any order): a rejected target's component is the one with its box."""
    if not targets:
        return mask, targets
    keep = np.asarray(verifier.keep(frame, targets), dtype=bool)
    if keep.shape != (len(targets),):
        raise ValueError(f"a verifier answered {keep.shape} for {len(targets)} targets")
    if keep.all():
        return mask, targets
    labels = connected_components(mask, connectivity).labels
    boxes = {(sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1): i + 1
             for i, sl in enumerate(ndimage.find_objects(labels)) if sl is not None}
    drop = [boxes[tuple(t.bbox)] for t, k in zip(targets, keep) if not k and tuple(t.bbox) in boxes]
    return mask & ~np.isin(labels, drop), [t for t, k in zip(targets, keep) if k]
