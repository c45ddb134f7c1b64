"""A tracker for point-like targets: Kalman prediction, gated optimal assignment, M-of-N birth, and
confirmation by motion relative to the scene.

Tracks live in scene coordinates: the camera's shift between frames (:class:`~.motion.GlobalMotion`) is
summed into an offset ``cam`` and a detection at image position ``p`` sits at ``p - cam`` in the scene.
Static clutter then stays put however the camera pans, and a track that moves in the scene is a target.
With a camera model beyond the shift (``TrackerParams.camera``), a frame's zoom, rotation or shear is
applied to every track's state and motion window instead (the scene is re-expressed at the new frame's
scale and orientation), so the scene keeps the scale of the current frame and static clutter still stays put.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..core.errors import ConfigError
from . import kalman
from .motion import GlobalMotion, MotionEstimate
from .params import TrackerParams

log = logging.getLogger(__name__)

_BIG = 1e9


def as_detections(detections: Any) -> np.ndarray:
    """Detections as a float64 array (N, 4) of ``x, y, area, score``.

    Takes an array (N, 2) ``x, y``, (N, 3) ``x, y, area`` or (N, 4+) ``x, y, area, score``, or a sequence of
    objects with ``x``, ``y`` and optionally ``area`` and ``peak`` or ``score`` (e.g. the predictor's targets).
    Missing columns are 1.
    """
    if isinstance(detections, np.ndarray) or (detections is not None and len(detections) and
                                              not hasattr(detections[0], "x")):
        a = np.asarray(detections, dtype=np.float64)
        if a.size == 0:
            return np.zeros((0, 4))
        if a.ndim != 2 or a.shape[1] < 2:
            raise ConfigError(f"detections must be an (N, 2..4) array of x, y[, area[, score]], got shape {a.shape}")
        out = np.ones((len(a), 4))
        k = min(a.shape[1], 4)
        out[:, :k] = a[:, :k]
        return out
    rows = [(d.x, d.y, getattr(d, "area", 1), getattr(d, "peak", getattr(d, "score", 1.0))) for d in detections or ()]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


@dataclass(frozen=True)
class TrackedTarget:
    """A confirmed target in one frame, in image coordinates."""

    id: int
    x: float
    y: float
    predicted: bool  # no detection this frame: the track's predicted position (coasting)
    score: float  # the detection's score (nan when predicted)
    detection: int  # index into the frame's detections, -1 when predicted


@dataclass
class FrameResult:
    """The tracker's answer for one frame."""

    index: int  # frame number, from 0 in the order fed
    detections: np.ndarray  # (N, 4) x, y, area, score: the raw detections, image coordinates
    track_ids: np.ndarray  # (N,) int: the track each detection joined or started, -1 for none
    confirmed: np.ndarray  # (N,) bool: the detection belongs to a confirmed track
    targets: list[TrackedTarget] = field(default_factory=list)  # confirmed, detected or coasting
    coasting: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (C, 3) id, x, y: established tracks missed here
    motion: MotionEstimate | None = None  # the camera's motion into this frame (None without frames)
    cut: bool = False  # a scene cut before this frame ended every track


class Tracker:
    """Online tracker: feed :meth:`update` one frame's detections at a time (and the frame, for the camera).

    Track ids start at 1, are never reused, and do not survive a scene cut (a target after a cut gets a
    new id). A confirmed track stays confirmed until it dies, or until its detections fail the motion and
    hover tests in ``release_after`` consecutive frames (:class:`TrackerParams`).
    """

    def __init__(self, params: TrackerParams | None = None) -> None:
        self.params = params or TrackerParams()
        self._q = kalman.process_noise(self.params.accel_std)
        self._motion = GlobalMotion.for_params(self.params)
        self._next_id = 1
        self.reset()

    def reset(self) -> None:
        """End every track and forget the camera (ids keep counting)."""
        w = self.params.motion_window
        self._ids = np.zeros(0, dtype=np.int64)
        self._x = np.zeros((0, 4))
        self._p = np.zeros((0, 4, 4))
        self._hist = np.zeros(0, dtype=np.int64)  # bit i: detected i frames ago (bit 0: this frame)
        self._misses = np.zeros(0, dtype=np.int64)  # consecutive
        self._hover = np.zeros(0, dtype=np.int64)  # consecutive frames detected with score >= hover_score
        self._age = np.zeros(0, dtype=np.int64)  # frames since the track's birth
        self._established = np.zeros(0, dtype=bool)
        self._confirmed = np.zeros(0, dtype=bool)
        self._failing = np.zeros(0, dtype=np.int64)  # consecutive detected frames failing both confirmation tests
        self._win = np.zeros((0, w, 2))  # scene positions of the last w frames (nan: missed), ring buffer
        self._win_img = np.zeros((0, w, 2))  # the same detections in image coordinates
        self._cam = np.zeros(2)  # (x, y) offset: image = scene + cam
        self._frame = 0

    def _keep(self, keep: np.ndarray) -> None:
        for name in ("_ids", "_x", "_p", "_hist", "_misses", "_hover", "_age", "_established", "_confirmed",
                     "_failing", "_win", "_win_img"):
            setattr(self, name, getattr(self, name)[keep])

    @property
    def n_tracks(self) -> int:
        return len(self._ids)

    def next_positions(self, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        """Where every live track (confirmed or not) is expected in the next frame, in image coordinates,
        (T, 2) x, y: one constant-velocity step, the camera moving by ``shift`` (dx, dy) meanwhile (e.g.
        the last frame's). For a detector that looks closer around tracks (windows, hints)."""
        return self._x[:, :2] + self._x[:, 2:4] + self._cam + np.asarray(shift, dtype=np.float64)

    def _camera(self, frame: np.ndarray | None, shift: tuple[float, float] | None,
                motion: MotionEstimate | None) -> tuple[MotionEstimate | None, bool]:
        est = None
        if motion is not None:
            est = motion
            dx, dy, cut = (motion.dx, motion.dy, motion.cut) if self.params.compensate else (0.0, 0.0, motion.cut)
        elif shift is not None:
            dx, dy = shift
            cut = False
        elif frame is not None and self.params.compensate:
            est = self._motion.update(frame)
            dx, dy, cut = est.dx, est.dy, est.cut
        else:
            return None, False
        if cut:
            index, next_id = self._frame, self._next_id
            self.reset()
            self._frame, self._next_id = index, next_id
            log.debug("frame %d: scene cut, every track ended", index)
        else:
            if est is not None and not est.is_shift and self.params.compensate:
                self._warp(est)
            self._cam += (dx, dy)
        return est, cut

    def _warp(self, est: MotionEstimate) -> None:
        """Re-express every track in the scene of the new frame under the linear part ``A`` of ``est``.

        A scene point ``s`` (image ``s + cam``) lies at ``A (s + cam - c) + c + d`` in the new frame, and
        ``cam`` becomes ``cam + d``; so ``s' = A s + (A - I) (cam - c)``; velocities ``v' = A v``, covariances
        ``T P Tᵀ`` with ``T = diag(A, A)``; the scene motion windows move as positions (nan stays nan)."""
        a = np.asarray(est.linear, dtype=np.float64).reshape(2, 2)
        off = (a - np.eye(2)) @ (self._cam - (est.cx, est.cy))
        self._x[:, :2] = self._x[:, :2] @ a.T + off
        self._x[:, 2:4] = self._x[:, 2:4] @ a.T
        t = np.zeros((4, 4))
        t[:2, :2] = t[2:, 2:] = a
        self._p = t @ self._p @ t.T
        self._win = self._win @ a.T + off

    def _young_tracks(self) -> np.ndarray:
        """Indices of the tracks with one detection (no velocity yet) born in the last ``birth_span`` frames."""
        h = self._hist
        one = (h != 0) & ((h & (h - 1)) == 0)  # a single bit set: one detection in the birth window
        return np.flatnonzero(one & ~self._established & (self._age < self.params.birth_span))

    def _young_costs(self, idx: np.ndarray, cost: np.ndarray, gate: np.ndarray, det: np.ndarray) -> np.ndarray:
        """Costs (Y, D) of the wider association of the young tracks ``idx`` (Y,), ``_BIG`` outside it: their
        scene distance within ``birth_gate``, and (``birth_image``) the step from the detection's image
        position to the track's one detection in the image, within the track's gate (a target crossing
        against a pan steps farther in the scene than in the image). ``cost``: their scene distances (Y, D)
        before gating; ``gate`` (Y,) their gates; ``det`` (D, 4) image coordinates."""
        pr = self.params
        out = np.full(cost.shape, _BIG)
        if not cost.size:
            return out
        if pr.birth_gate:
            out = np.where(cost <= pr.birth_gate, cost, _BIG)
        if pr.birth_image:
            slot = (self._frame - 1 - self._age[idx]) % pr.motion_window  # the frame of its one detection
            last = self._win_img[idx, slot]  # (Y, 2) image x, y
            c = np.hypot(last[:, None, 0] - det[None, :, 0], last[:, None, 1] - det[None, :, 1])
            out = np.minimum(out, np.where(c <= gate[:, None], c, _BIG))
        return out

    def update(self, detections: Any, frame: np.ndarray | None = None,
               shift: tuple[float, float] | None = None, motion: MotionEstimate | None = None) -> FrameResult:
        """Take one frame's detections (see :func:`as_detections`) and, for the camera, one of: ``frame``
        (H, W), from which the shift and cuts are estimated; ``shift`` = (dx, dy) when the caller knows it
        (content moved by that much since the last frame; no cut test); ``motion``, an estimate the caller
        made with its own :class:`GlobalMotion` (its cut ends every track, even with ``compensate`` off)."""
        pr = self.params
        det = as_detections(detections)
        motion, cut = self._camera(frame, shift, motion)
        z = det[:, :2] - self._cam  # scene coordinates, (D, 2)
        n, d = len(self._ids), len(det)
        mask = (1 << pr.birth_window) - 1

        # predict, gate, assign
        if n:
            self._x, self._p = kalman.predict(self._x, self._p, self._q)
        det_track = np.full(d, -1, dtype=np.int64)  # index of the track each detection joins
        hit = np.zeros(n, dtype=bool)
        wide = np.zeros(n, dtype=bool)  # a track with one detection that took one beyond the ordinary gate
        if n and d:
            cost = np.hypot(self._x[:, None, 0] - z[None, :, 0], self._x[:, None, 1] - z[None, :, 1])  # (T, D)
            gate = np.clip(pr.gate_sigmas * kalman.innovation_std(self._p, pr.meas_std), pr.gate_min, pr.gate)
            gated = np.where(cost > gate[:, None], _BIG, cost)
            if pr.birth_gate or pr.birth_image:
                young = self._young_tracks()
                if pr.birth_second_pass:  # unmatched young tracks, untaken detections
                    rows, cols = _assign(gated)
                    free_t = np.zeros(n, dtype=bool)
                    free_t[young] = True
                    free_t[rows] = False
                    free_d = np.ones(d, dtype=bool)
                    free_d[cols] = False
                    t2, d2 = np.flatnonzero(free_t), np.flatnonzero(free_d)
                    r2, c2 = _assign(self._young_costs(t2, cost[np.ix_(t2, d2)], gate[t2], det[d2]))
                    rows, cols = np.concatenate([rows, t2[r2]]), np.concatenate([cols, d2[c2]])
                    wide[t2[r2]] = True
                else:
                    gated[young] = np.minimum(gated[young], self._young_costs(young, cost[young], gate[young], det))
                    rows, cols = _assign(gated)
                    wide[rows] = cost[rows, cols] > gate[rows]  # taken only through the wider association
            else:
                rows, cols = _assign(gated)
            hit[rows] = True
            det_track[cols] = rows
            self._x[rows], self._p[rows] = kalman.update(self._x[rows], self._p[rows], z[cols], pr.meas_std)
        else:
            rows = cols = np.zeros(0, dtype=np.int64)

        # bookkeeping of the tracks that existed before this frame
        slot = self._frame % pr.motion_window
        self._win[:, slot] = np.nan
        self._win[rows, slot] = z[cols]
        self._win_img[:, slot] = np.nan
        self._win_img[rows, slot] = det[cols, :2]
        self._hist = ((self._hist << 1) | hit) & mask
        self._misses = np.where(hit, 0, self._misses + 1)
        strong = np.zeros(n, dtype=bool)
        strong[rows] = det[cols, 3] >= pr.hover_score
        self._hover = np.where(strong, self._hover + 1, 0)
        self._age += 1
        self._established |= _popcount(self._hist) >= pr.birth_hits
        early = np.zeros(n, dtype=bool)
        if pr.early_step and len(rows):
            early[rows] = self._age[rows] == 1
            if early.any():  # born in the last frame, detected again now: its one step, scene and image
                prev = (self._frame - 1) % pr.motion_window
                step = np.hypot(*(self._win[rows, slot] - self._win[rows, prev]).T)
                step_img = np.hypot(*(self._win_img[rows, slot] - self._win_img[rows, prev]).T)
                early[rows] &= (step >= pr.early_step) & (step_img >= pr.min_image_displacement)
                if not pr.birth_early:  # a wide step is confirmed by the line, at its third detection
                    early &= ~wide
            self._established |= early
        if len(rows):
            cnt, disp, rms = _line_fit(self._win[rows], slot)
            _, disp_img, _ = _line_fit(self._win_img[rows], slot)
            moved = np.zeros(n, dtype=bool)
            moved[rows] = (cnt >= 3) & (disp >= pr.min_displacement) & (rms <= pr.max_residual) \
                & (disp_img >= pr.min_image_displacement)
            still = np.zeros(n, dtype=bool)
            still[rows] = disp < pr.min_displacement
            hover = (self._hover >= pr.hover_frames) & still if pr.hover_frames else np.zeros(n, dtype=bool)
            self._confirmed |= self._established & hit & (moved | hover | early)
            if pr.release_after:
                failing = np.zeros(n, dtype=bool)
                failing[rows] = cnt >= 3  # a window with too few detections tells nothing
                failing &= hit & ~moved & ~hover
                self._failing = np.where(failing, self._failing + 1, np.where(hit, 0, self._failing))
                self._confirmed &= self._failing < pr.release_after

        # deaths: a tentative track that can no longer reach M of N, an established one after K misses
        dead = np.where(self._established, self._misses > pr.max_misses,
                        self._misses > pr.birth_window - pr.birth_hits)
        alive = ~dead

        # births from the detections no track took
        free = np.flatnonzero((det_track < 0) & (det[:, 3] >= pr.birth_score))
        if dead.any():  # a track hit this frame has no miss: never dead, so every det_track stays valid
            det_track[cols] = (np.cumsum(alive) - 1)[rows]
            self._keep(alive)
        if len(free):
            start = len(self._ids)
            x0, p0 = kalman.initial(z[free], pr.meas_std, pr.speed_std)
            win0 = np.full((len(free), pr.motion_window, 2), np.nan)
            win0[:, slot] = z[free]
            self._ids = np.concatenate([self._ids, np.arange(self._next_id, self._next_id + len(free))])
            self._next_id += len(free)
            self._x = np.concatenate([self._x, x0])
            self._p = np.concatenate([self._p, p0])
            self._hist = np.concatenate([self._hist, np.ones(len(free), dtype=np.int64)])
            self._misses = np.concatenate([self._misses, np.zeros(len(free), dtype=np.int64)])
            self._hover = np.concatenate([self._hover, (det[free, 3] >= pr.hover_score).astype(np.int64)])
            self._age = np.concatenate([self._age, np.zeros(len(free), dtype=np.int64)])
            est = np.full(len(free), pr.birth_hits <= 1)
            self._established = np.concatenate([self._established, est])
            self._confirmed = np.concatenate([self._confirmed, est & (pr.hover_frames == 1)])
            self._failing = np.concatenate([self._failing, np.zeros(len(free), dtype=np.int64)])
            self._win = np.concatenate([self._win, win0])
            win0[:, slot] = det[free, :2]
            self._win_img = np.concatenate([self._win_img, win0])
            det_track[free] = np.arange(start, start + len(free))

        # the answer, in image coordinates
        has = det_track >= 0
        track_ids = np.where(has, self._ids[np.maximum(det_track, 0)] if len(self._ids) else -1, -1)
        confirmed = np.zeros(d, dtype=bool)
        if len(self._ids):
            confirmed[has] = self._confirmed[det_track[has]]
        targets = [TrackedTarget(int(track_ids[i]), float(det[i, 0]), float(det[i, 1]), False, float(det[i, 3]), int(i))
                   for i in np.flatnonzero(confirmed)]
        missed = np.flatnonzero((self._misses > 0) & self._established)
        pos = self._x[missed, :2] + self._cam
        coasting = np.column_stack([self._ids[missed], pos]) if len(missed) else np.zeros((0, 3))
        for k, i in enumerate(missed):
            if self._confirmed[i] and self._misses[i] <= pr.coast:
                targets.append(TrackedTarget(int(self._ids[i]), float(pos[k, 0]), float(pos[k, 1]), True,
                                             float("nan"), -1))
        result = FrameResult(self._frame, det, track_ids, confirmed, targets, coasting, motion, cut)
        self._frame += 1
        return result


def _assign(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Optimal pairs (rows, cols) of a (T, D) cost matrix, pairs at ``_BIG`` (outside the gate) dropped."""
    if not cost.size or cost.min() >= _BIG:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rows, cols = linear_sum_assignment(cost)
    ok = cost[rows, cols] < _BIG
    return rows[ok], cols[ok]


def _line_fit(win: np.ndarray, slot: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A straight line at constant speed through each track's positions of the window (M, w, 2; nan where
    missed; ``slot`` is this frame's): (positions n, the line's length from the oldest to now in px, its rms
    miss in px), each (M,). A track hopping between two clutter spots fits no line (large rms)."""
    w = win.shape[1]
    t = -((slot - np.arange(w)) % w).astype(np.float64)  # frames before this one, (w,)
    ok = ~np.isnan(win[..., 0])  # (M, w)
    n = ok.sum(axis=1)
    tt = np.where(ok, t, 0.0)
    mt = tt.sum(axis=1) / n
    dt = np.where(ok, t - mt[:, None], 0.0)
    var = (dt * dt).sum(axis=1)
    p = np.nan_to_num(win)
    mp = p.sum(axis=1) / n[:, None]  # (M, 2)
    slope = (dt[..., None] * (p - mp[:, None])).sum(axis=1) / np.maximum(var, 1e-9)[:, None]  # px/frame
    res = np.where(ok[..., None], p - mp[:, None] - slope[:, None] * dt[..., None], 0.0)
    rms = np.sqrt((res * res).sum(axis=(1, 2)) / n)
    span = np.where(ok, t, np.inf).min(axis=1)
    return n, np.hypot(slope[:, 0], slope[:, 1]) * -span, rms


def _popcount(a: np.ndarray) -> np.ndarray:
    """Set bits of each int64 (values below 2**62)."""
    count = np.zeros(a.shape, dtype=np.int64)
    a = a.copy()
    while a.any():
        count += a & 1
        a >>= 1
    return count


def confirm_offline(results: Sequence[FrameResult]) -> list[FrameResult]:
    """The offline answer: a track confirmed at some frame confirms all its detections up to the last frame it
    was confirmed in, earlier ones included (a detection after a release, :class:`TrackerParams`
    ``release_after``, stays unconfirmed); its gaps between two detections up to then are filled with its
    predicted positions; a coast after a track's last detection is dropped (the track never came back)."""
    last_confirmed: dict[int, int] = {}  # track id -> last frame it was a target in, online
    last_hit: dict[int, int] = {}
    for r in results:
        for t in r.targets:
            if not t.predicted:
                last_confirmed[t.id] = r.index
        for tid in r.track_ids[r.track_ids >= 0]:
            last_hit[int(tid)] = r.index
    out = []
    for r in results:
        until = np.array([last_confirmed.get(int(t), -1) for t in r.track_ids], dtype=np.int64)
        conf = (r.track_ids >= 0) & (r.index <= until)
        targets = [TrackedTarget(int(r.track_ids[i]), float(r.detections[i, 0]), float(r.detections[i, 1]), False,
                                 float(r.detections[i, 3]), int(i)) for i in np.flatnonzero(conf)]
        for tid, x, y in r.coasting:
            if r.index < last_confirmed.get(int(tid), -1) and last_hit.get(int(tid), -1) > r.index:
                targets.append(TrackedTarget(int(tid), float(x), float(y), True, float("nan"), -1))
        out.append(FrameResult(r.index, r.detections, r.track_ids, conf, targets, r.coasting, r.motion, r.cut))
    return out


def track(detections: Iterable[Any], frames: Iterable[np.ndarray] | None = None,
          params: TrackerParams | None = None, offline: bool = False) -> list[FrameResult]:
    """Run a fresh :class:`Tracker` over a sequence's detections (and frames, for the camera's motion);
    ``offline``: the answer of :func:`confirm_offline`."""
    tracker = Tracker(params)
    frames_it = iter(frames) if frames is not None else None
    results = [tracker.update(d, next(frames_it) if frames_it is not None else None) for d in detections]
    return confirm_offline(results) if offline else results
