"""Scores of raw detections and confirmed targets against point labels (one or more centres per frame).

A label is found when a detection's centroid lies within ``gate`` px of it (default 4 px, the project's
reference); labels and detections are paired one to one (optimal assignment on the distance), and every
unpaired detection is a false target. Track metrics (MOTA, IDF1, ID switches) come from ``motmetrics``
(the optional extra ``track``) on the same euclidean gate.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..core.errors import ConfigError, DataError
from .tracker import FrameResult

log = logging.getLogger(__name__)

GATE = 4.0  # px: a label is found by a detection centroid this close
CLIP_JUMP = 20.0  # px: a labelled point jumping farther between two frames starts a new clip


def read_point_labels(path: str | Path) -> np.ndarray:
    """A label file of ``row,col`` lines (one target centre per frame) as (F, 2) float ``x, y``."""
    path = Path(path)
    try:
        rows = [line.split(",") for line in path.read_text().splitlines() if line.strip()]
        a = np.asarray(rows, dtype=np.float64)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a file of 'row,col' lines ({e})") from None
    if a.ndim != 2 or a.shape[1] != 2:
        raise DataError(f"{path}: expected 2 numbers per line (row,col), got shape {a.shape}")
    return a[:, ::-1].copy()


def clip_starts(points: np.ndarray, jump: float = CLIP_JUMP) -> list[int]:
    """Frames where a clip starts: frame 0 and every frame whose single label jumped > ``jump`` px. (F, 2)."""
    step = np.hypot(*np.diff(np.asarray(points, dtype=np.float64), axis=0).T)
    return [0] + [int(i) + 1 for i in np.flatnonzero(step > jump)]


def labels_with_clip_ids(points: np.ndarray, jump: float = CLIP_JUMP) -> list[np.ndarray]:
    """One label per frame (F, 2) → per frame a (1, 3) array ``id, x, y``, the id counting clips from 1."""
    starts = set(clip_starts(points, jump))
    out, clip = [], 0
    for i, (x, y) in enumerate(np.asarray(points, dtype=np.float64)):
        clip += i in starts
        out.append(np.array([[clip, x, y]]))
    return out


def _xy(labels: np.ndarray) -> np.ndarray:
    a = np.asarray(labels, dtype=np.float64).reshape(len(labels), -1) if len(labels) else np.zeros((0, 2))
    return a[:, -2:]  # (id,) x, y → x, y


def match(points: np.ndarray, labels: np.ndarray, gate: float = GATE) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one pairing within ``gate``: (found (L,) bool per label, paired (N,) bool per point)."""
    points, labels = np.asarray(points, dtype=np.float64).reshape(-1, 2), _xy(labels)
    found, paired = np.zeros(len(labels), dtype=bool), np.zeros(len(points), dtype=bool)
    if len(points) and len(labels):
        d = np.hypot(labels[:, None, 0] - points[None, :, 0], labels[:, None, 1] - points[None, :, 1])
        r, c = linear_sum_assignment(np.where(d <= gate, d, 1e9))
        ok = d[r, c] <= gate
        found[r[ok]], paired[c[ok]] = True, True
    return found, paired


@dataclass(frozen=True)
class DetectionScores:
    """Per-frame detection scores of one set of points per frame."""

    frames: int
    labels: int
    found: int
    pd: float  # % of labels found
    false_per_frame: float
    false_per_mpx: float  # false targets per frame per megapixel
    frames_with_false: float  # % of frames with at least one false target


def detection_scores(points: Sequence[np.ndarray], labels: Sequence[np.ndarray], frame_shape: tuple[int, int],
                     gate: float = GATE) -> tuple[DetectionScores, np.ndarray]:
    """Scores of ``points`` (per frame (N, 2) x, y) against ``labels`` (per frame (L, 2) or (L, 3) id, x, y),
    and which frames had every label found, (F,) bool."""
    if len(points) != len(labels):
        raise ConfigError(f"{len(points)} frames of detections against {len(labels)} frames of labels")
    n_lab = n_found = n_false = frames_false = 0
    all_found = np.zeros(len(points), dtype=bool)
    for i, (p, lab) in enumerate(zip(points, labels)):
        found, paired = match(p, lab, gate)
        n_lab += len(found)
        n_found += int(found.sum())
        false = int((~paired).sum())
        n_false += false
        frames_false += false > 0
        all_found[i] = bool(found.all()) and len(found) > 0
    f = max(len(points), 1)
    mpx = frame_shape[0] * frame_shape[1] / 1e6
    return DetectionScores(len(points), n_lab, n_found, 100.0 * n_found / max(n_lab, 1), n_false / f,
                           n_false / f / mpx, 100.0 * frames_false / f), all_found


def track_metrics(hypotheses: Sequence[np.ndarray], labels: Sequence[np.ndarray], gate: float = GATE) -> dict[str, float]:
    """MOTA, IDF1 (both %), ID switches and more through ``motmetrics``.

    ``hypotheses``: per frame (K, 3) ``id, x, y``; ``labels``: per frame (L, 3) ``id, x, y``. A pair farther
    than ``gate`` px never matches.
    """
    try:
        import motmetrics as mm
    except ImportError:
        raise ConfigError("track metrics need motmetrics: pip install 'sgem-irstd[track]'") from None
    acc = mm.MOTAccumulator(auto_id=True)
    for hyp, lab in zip(hypotheses, labels):
        hyp = np.asarray(hyp, dtype=np.float64).reshape(-1, 3)
        lab = np.asarray(lab, dtype=np.float64).reshape(-1, 3)
        d = np.hypot(lab[:, None, 1] - hyp[None, :, 1], lab[:, None, 2] - hyp[None, :, 2])
        d[d > gate] = np.nan  # motmetrics: nan = may not pair
        acc.update(lab[:, 0].astype(int).tolist(), hyp[:, 0].astype(int).tolist(), d)
    names = ["mota", "idf1", "num_switches", "num_false_positives", "num_misses", "num_matches", "mostly_tracked",
             "num_unique_objects"]
    s = mm.metrics.create().compute(acc, metrics=names, name="all")
    row = {k: float(s.loc["all", k]) for k in names}
    row["mota"] *= 100
    row["idf1"] *= 100
    return row


def first_found_delays(found: np.ndarray, starts: Sequence[int]) -> list[int | None]:
    """Per clip, frames from its start to the first frame whose label is found (None: never in the clip)."""
    bounds = list(starts) + [len(found)]
    out: list[int | None] = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        hits = np.flatnonzero(found[a:b])
        out.append(int(hits[0]) if len(hits) else None)
    return out


@dataclass(frozen=True)
class TrackEvaluation:
    """Raw detections against confirmed targets on one sequence."""

    raw: DetectionScores
    confirmed: DetectionScores
    mot: dict[str, float]
    raw_delays: list[int | None]  # per clip: frames to the first raw detection of the label
    confirmed_delays: list[int | None]  # …and to its first confirmed target

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate_tracking(results: Sequence[FrameResult], labels: Sequence[np.ndarray], frame_shape: tuple[int, int],
                      gate: float = GATE, starts: Sequence[int] | None = None) -> TrackEvaluation:
    """Score a tracker's results (online or :func:`~.tracker.confirm_offline`) against labels per frame
    ((L, 3) ``id, x, y``, e.g. :func:`labels_with_clip_ids`); ``starts``: clip starts (default frame 0 only)."""
    raw_pts = [r.detections[:, :2] for r in results]
    conf_pts = [np.array([(t.x, t.y) for t in r.targets]).reshape(-1, 2) for r in results]
    raw, raw_found = detection_scores(raw_pts, labels, frame_shape, gate)
    conf, conf_found = detection_scores(conf_pts, labels, frame_shape, gate)
    hyps = [np.array([(t.id, t.x, t.y) for t in r.targets]).reshape(-1, 3) for r in results]
    mot = track_metrics(hyps, labels, gate)
    starts = [0] if starts is None else list(starts)
    return TrackEvaluation(raw, conf, mot, first_found_delays(raw_found, starts), first_found_delays(conf_found, starts))
