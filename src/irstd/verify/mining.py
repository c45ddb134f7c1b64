"""Training examples for the verifier: candidate centres labelled against a mask, and their patches.

Positives are the components of a target mask (their centroids) and a detector's candidates that overlap
one; negatives are a detector's candidates farther than ``margin`` pixels from every target pixel (its
false alarms). A candidate that touches no target but lies within ``margin`` of one is left out: its label
is not clear-cut. Target-free frames give negatives only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import ndimage

from ..core.components import connected_components
from ..inference.targets import Target
from .patches import extract_patches

__all__ = ["Examples", "label_candidates", "mask_centres", "examples_of_frame", "examples_of_planted",
           "examples_of_points"]

#: pixels around the targets where a candidate is neither a hit nor a false alarm
MARGIN = 6
#: point labels (a target centre, no mask): a candidate within HIT px is the target, beyond FAR px clutter
HIT, FAR = 4.0, 8.0


@dataclass
class Examples:
    """Raw patches (N, S, S) float32 with labels (N,) uint8 (1 target, 0 clutter) and their origin."""

    patches: np.ndarray
    labels: np.ndarray
    source: list[str] = field(default_factory=list)  #: ``<frame>:<kind>`` per patch

    @classmethod
    def empty(cls, size: int) -> "Examples":
        """No patch yet, of side ``size``."""
        return cls(np.zeros((0, size, size), np.float32), np.zeros(0, np.uint8), [])

    def __len__(self) -> int:
        return len(self.labels)

    def extend(self, other: "Examples") -> None:
        """Append ``other``'s patches."""
        self.patches = np.concatenate([self.patches, other.patches])
        self.labels = np.concatenate([self.labels, other.labels])
        self.source += other.source


def mask_centres(mask: np.ndarray) -> list[tuple[float, float]]:
    """(x, y) centroids of the components of a target mask (8-connected, as the metrics)."""
    cc = connected_components(np.asarray(mask, dtype=bool), 8)
    return [(float(c), float(r)) for r, c in cc.centroids]


def label_candidates(targets: Sequence[Target], mask: np.ndarray | None, margin: int = MARGIN) -> np.ndarray:
    """(N,) int8 per candidate: 1 its box holds a target pixel, 0 none within ``margin`` px, -1 in between."""
    if mask is None or not np.any(mask):
        return np.zeros(len(targets), np.int8)
    mask = np.asarray(mask, dtype=bool)
    near = ndimage.binary_dilation(mask, iterations=margin)
    out = np.empty(len(targets), np.int8)
    for i, t in enumerate(targets):
        x0, y0, x1, y1 = t.bbox
        if mask[y0 : y1 + 1, x0 : x1 + 1].any():
            out[i] = 1
        else:
            out[i] = -1 if near[y0 : y1 + 1, x0 : x1 + 1].any() else 0
    return out


def examples_of_frame(name: str, frame: np.ndarray, targets: Sequence[Target], mask: np.ndarray | None,
                      size: int, kind: str = "det") -> Examples:
    """The labelled patches of one frame: its mask's components (when a mask is given) and the clear-cut
    candidates of ``targets`` (hits and false alarms), each ``size`` pixels a side."""
    labels = label_candidates(targets, mask)
    keep = [i for i in range(len(targets)) if labels[i] >= 0]
    centres = [(targets[i].x, targets[i].y) for i in keep]
    lab = [int(labels[i]) for i in keep]
    src = [f"{name}:{kind}{'+' if labels[i] else '-'}" for i in keep]
    if mask is not None:
        gt = mask_centres(mask)
        centres += gt
        lab += [1] * len(gt)
        src += [f"{name}:mask+"] * len(gt)
    return Examples(extract_patches(frame, centres, size), np.asarray(lab, np.uint8), src)


def examples_of_planted(name: str, frame: np.ndarray, targets: Sequence[Target], planted: np.ndarray,
                        mask: np.ndarray | None, size: int) -> Examples:
    """The labelled patches of a frame with planted targets (:mod:`.planting`) and the detector's ``targets``
    on it: each candidate that holds a planted pixel (``<frame>:planted+``) with the planted blob's own
    centroid beside it, each real target hit (``det+``), each false alarm (``det-``); the planted blobs the
    detector missed are left out (a verifier only ever sees what a detector found)."""
    planted = np.asarray(planted, dtype=bool)
    real = np.zeros_like(planted) if mask is None else np.asarray(mask, dtype=bool)
    labels = label_candidates(targets, planted | real)
    cc = connected_components(planted, 8)
    centres, lab, src = [], [], []
    hit_blobs: set[int] = set()
    for t, l in zip(targets, labels):
        if l < 0:
            continue
        x0, y0, x1, y1 = t.bbox
        blobs = np.unique(cc.labels[y0 : y1 + 1, x0 : x1 + 1])
        blobs = blobs[blobs > 0]
        kind = "planted" if len(blobs) and l == 1 else "det"
        hit_blobs.update(int(b) for b in blobs)
        centres.append((t.x, t.y))
        lab.append(int(l))
        src.append(f"{name}:{kind}{'+' if l else '-'}")
    for b in sorted(hit_blobs):
        r, c = cc.centroids[b - 1]
        centres.append((float(c), float(r)))
        lab.append(1)
        src.append(f"{name}:planted+")
    return Examples(extract_patches(frame, centres, size), np.asarray(lab, np.uint8), src)


def examples_of_points(name: str, frame: np.ndarray, targets: Sequence[Target], points: np.ndarray, size: int,
                       kind: str = "det", with_labels: bool = False) -> Examples:
    """The labelled patches of a frame with point labels (``points`` (L, 2) x, y target centres, as the
    ISTD sequences give): a candidate whose centroid lies within :data:`HIT` px of a label is a target
    (``<frame>:<kind>+``), one farther than :data:`FAR` px from every label is clutter (``<kind>-``), one in
    between is left out (not clear-cut); with ``with_labels`` each label's own patch is a target
    (``<frame>:label+``)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    centres, lab, src = [], [], []
    for t in targets:
        d = float(np.min(np.hypot(pts[:, 0] - t.x, pts[:, 1] - t.y))) if len(pts) else np.inf
        if d <= HIT or d > FAR:
            centres.append((t.x, t.y))
            lab.append(int(d <= HIT))
            src.append(f"{name}:{kind}{'+' if d <= HIT else '-'}")
    if with_labels:
        centres += [(float(x), float(y)) for x, y in pts]
        lab += [1] * len(pts)
        src += [f"{name}:label+"] * len(pts)
    return Examples(extract_patches(frame, centres, size), np.asarray(lab, np.uint8), src)
