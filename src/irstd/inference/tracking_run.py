"""Run a predictor and the tracker over a frame source: per frame, the detection record with its tracks.

:func:`track_frames` runs :func:`~irstd.inference.pipeline.detect_frames` (every frame here: the tracker
needs them all) and feeds each frame's targets and pixels to :class:`irstd.tracking.Tracker`. Each frame's
record (:func:`track_record`) is the detection record of :mod:`irstd.inference.schema` plus

* ``tracks``: the track id of each raw target (same order as ``targets``), or null for a target no track took;
* ``confirmed``: ``[{"id", "x", "y", "predicted", "score"}]``, the confirmed targets (``predicted``: a
  confirmed track missed in this frame, at its predicted position; its score is null);
* ``coasting``: ``[[id, x, y]]``, every established track missed in this frame at its predicted position
  (what :func:`irstd.tracking.confirm_offline` fills gaps with);
* ``motion``: ``{"dx", "dy", "cut", "peak"}``, the camera's shift into this frame and the scene-cut test
  (null when the frame was not read, or camera compensation is off); with a camera model beyond the shift
  also ``linear`` ``[a11, a12, a21, a22]`` and ``centre`` ``[cx, cy]`` when the frame's fit was kept: a point
  ``p`` of the last frame lies at ``A (p - centre) + centre + (dx, dy)``.

A frame that cannot be read keeps its error record (with empty ``tracks``); the tracker is told the frame
is missing: a miss for every track, no camera shift (the next frame's shift is measured against the last
frame read). Tracker internals are never stored: :func:`replay` rebuilds the tracker from finished records
(their raw targets and stored camera motion), so a run resumes exactly where it stopped.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..core.errors import DataError
from ..tracking import FrameResult, GlobalMotion, MotionEstimate, TrackedTarget, Tracker, TrackerParams
from .pipeline import Detection, FramePredictor, detect_frames
from .sources import PREFETCH, Frame, FrameSource, Want, open_source, prefetched

__all__ = ["TrackStep", "track_frames", "track_record", "result_from_record", "replay", "record_detections"]

log = logging.getLogger(__name__)

_NONE = np.zeros((0, 4))


@dataclass
class TrackStep:
    """One frame of a track run: ``record`` (see the module), the tracker's ``result``, and the
    ``detection`` (frame and prediction) for a frame run now, None for a frame replayed from records."""

    record: dict[str, Any]
    result: FrameResult
    detection: Detection | None = None

    @property
    def replayed(self) -> bool:
        return self.detection is None


def record_detections(record: dict[str, Any]) -> np.ndarray:
    """A record's raw targets as the tracker takes them, (N, 4) ``x, y, area, peak`` (what live and
    replayed runs both feed it, so both give the same tracks)."""
    t = record.get("targets") or ()
    return np.array([(d["x"], d["y"], d["area"], d["peak"]) for d in t], dtype=np.float64).reshape(-1, 4)


def _motion_of(record: dict[str, Any]) -> MotionEstimate | None:
    m = record.get("motion")
    if not m:
        return None
    if "linear" in m:  # a camera model beyond the shift: its linear part about the frame's centre
        a11, a12, a21, a22, cx, cy = (float(v) for v in (*m["linear"], *m["centre"]))
        return MotionEstimate(float(m["dx"]), float(m["dy"]), float(m.get("peak", 1.0)), float("nan"), bool(m["cut"]),
                              (a11, a12, a21, a22), cx, cy)
    return MotionEstimate(float(m["dx"]), float(m["dy"]), float(m.get("peak", 1.0)), float("nan"), bool(m["cut"]))


def _num(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


def track_record(record: dict[str, Any], result: FrameResult) -> dict[str, Any]:
    """The detection ``record`` of one frame with the tracker's ``result`` added (see the module)."""
    out = dict(record)
    out["tracks"] = [int(i) if i >= 0 else None for i in result.track_ids]
    out["confirmed"] = [{"id": t.id, "x": t.x, "y": t.y, "predicted": t.predicted, "score": _num(t.score)}
                        for t in result.targets]
    out["coasting"] = [[int(i), float(x), float(y)] for i, x, y in result.coasting]
    m = result.motion
    out["motion"] = None if m is None else {"dx": m.dx, "dy": m.dy, "cut": bool(m.cut), "peak": m.peak}
    if m is not None and not m.is_shift:
        out["motion"].update(linear=list(m.linear), centre=[m.cx, m.cy])
    return out


def result_from_record(record: dict[str, Any]) -> FrameResult:
    """The tracker's online result of one frame, rebuilt from its record (no tracker needed)."""
    det = record_detections(record)
    if "tracks" not in record or "confirmed" not in record:
        raise DataError(f"{record.get('file', '?')}: record without tracks (not the output of irstd track)")
    ids = np.array([-1 if i is None else int(i) for i in record["tracks"]], dtype=np.int64)
    if len(ids) != len(det):
        raise DataError(f"{record.get('file', '?')}: {len(det)} targets but {len(ids)} track ids")
    index_of = {int(i): k for k, i in enumerate(ids) if i >= 0}
    targets = []
    for c in record["confirmed"]:
        score = float("nan") if c.get("score") is None else float(c["score"])
        k = -1 if c.get("predicted") else index_of.get(int(c["id"]), -1)
        targets.append(TrackedTarget(int(c["id"]), float(c["x"]), float(c["y"]), bool(c.get("predicted")), score, k))
    confirmed = np.zeros(len(det), dtype=bool)
    confirmed[[t.detection for t in targets if t.detection >= 0]] = True
    coasting = np.asarray(record.get("coasting") or np.zeros((0, 3)), dtype=np.float64).reshape(-1, 3)
    motion = _motion_of(record)
    return FrameResult(int(record.get("frame", 0)), det, ids, confirmed, targets, coasting, motion,
                       bool(motion.cut) if motion is not None else False)


def _step(tracker: Tracker, motion: GlobalMotion | None, record: dict[str, Any],
          image: np.ndarray | None) -> FrameResult:
    """Feed one frame to the tracker: live (``image`` given: the camera's motion is measured) or replayed
    (``image`` None: the record's stored motion)."""
    if "error" in record:
        return tracker.update(_NONE, shift=(0.0, 0.0))  # a missing frame: a miss for every track
    det = record_detections(record)
    if motion is None:  # compensation off: no camera, no cuts
        return tracker.update(det)
    if image is not None:
        est = motion.update(image)
    else:
        est = _motion_of(record)
        if est is None:
            raise DataError(f"{record.get('file', '?')}: record without the camera's motion; cannot resume")
        motion.replay((int(record["height"]), int(record["width"])), est)
    return tracker.update(det, motion=est)


def replay(records: Sequence[dict[str, Any]], params: TrackerParams | None = None, *,
           before: Callable[[Tracker, FrameResult | None, dict[str, Any]], None] | None = None,
           ) -> tuple[Tracker, GlobalMotion | None, list[FrameResult]]:
    """A tracker (and camera estimator) in the state it had after ``records`` (frames 0 … n-1, in order),
    rebuilt from their raw targets and stored motion; and the results it gave. ``before(tracker, last
    result, record)`` is called before each record is replayed (a caller that followed the live run)."""
    params = params or TrackerParams()
    tracker = Tracker(params)
    motion = GlobalMotion.for_params(params) if params.compensate else None
    results: list[FrameResult] = []
    for i, rec in enumerate(records):
        if int(rec.get("frame", -1)) != i:
            raise DataError(f"finished records are not frames 0..{len(records) - 1} in order "
                            f"(record {i} is frame {rec.get('frame')}); cannot resume")
        if before is not None:
            before(tracker, results[-1] if results else None, rec)
        results.append(_step(tracker, motion, rec, None))
    return tracker, motion, results


def _replay_predictor(predictor: Any) -> Callable[[Tracker, FrameResult | None, dict[str, Any]], None] | None:
    """For a predictor with a schedule (``skip_frame``, e.g. :class:`~irstd.inference.WindowedPredictor`):
    replay, frame by frame, the hints it had and the frames it ran, so a resumed run keeps its schedule."""
    skip_frame = getattr(predictor, "skip_frame", None)
    if not callable(skip_frame):
        return None

    def before(tracker: Tracker, last: FrameResult | None, rec: dict[str, Any]) -> None:
        _hint(predictor, tracker, last)
        if "error" not in rec:  # a frame that was not read never reached the predictor
            skip_frame((int(rec["height"]), int(rec["width"])), _motion_of(rec))

    return before


class _Primed(FrameSource):
    """A source that hands frame ``prime`` to a callback (not to the reader) while yielding the frames asked for."""

    def __init__(self, inner: FrameSource, prime: int, take) -> None:
        self.inner, self.prime, self.take = inner, prime, take

    def frames(self, want: Want = None) -> Iterator[Frame]:
        for frame in self.inner.frames(lambda i: i == self.prime or want is None or want(i)):
            if frame.index == self.prime:
                self.take(frame)
                if want is not None and not want(frame.index):
                    continue
            yield frame


def _hint(predictor: Any, tracker: Tracker, last: FrameResult | None) -> None:
    """Tell a predictor that can look closer around tracks where every live track should be next."""
    set_hints = getattr(predictor, "set_hints", None)
    if not callable(set_hints):
        return
    shift = (0.0, 0.0)
    if last is not None and last.motion is not None and not last.motion.cut:
        shift = (last.motion.dx, last.motion.dy)  # the camera keeps moving as it did
    points = [(float(x), float(y)) for x, y in tracker.next_positions(shift)]
    if getattr(predictor, "full_after_miss", False):  # it asks to hear of a confirmed track that coasted
        set_hints(points, missed=last is not None and any(t.predicted for t in last.targets))
    else:
        set_hints(points)


def track_frames(predictor: FramePredictor, source: FrameSource | Any, *, params: TrackerParams | None = None,
                 replay_records: Sequence[dict[str, Any]] = (), max_pixels: int | None = None,
                 prefetch: int = PREFETCH) -> Iterator[TrackStep]:
    """Detect and track every frame of ``source``; yield one :class:`TrackStep` per frame in source order.

    ``replay_records``: the finished records of an interrupted run (frames 0 … n-1): the tracker is rebuilt
    from them (yielded as replayed steps), the last of them that was read is decoded again for the camera's
    next shift, and detection goes on from frame n; the steps then equal an unbroken run's. Before each
    frame is read, a predictor with ``set_hints(points)`` gets the expected image positions of all live tracks.
    ``prefetch``: frames of files decoded that far ahead in a reader thread (see
    :func:`~irstd.inference.pipeline.detect_frames`; the hints concern the predictor, not the decoding).
    """
    params = params or TrackerParams()
    tracker, motion, done = replay(list(replay_records), params, before=_replay_predictor(predictor))
    for rec, res in zip(replay_records, done):
        yield TrackStep(rec, res)
    source = prefetched(open_source(source, max_pixels=max_pixels, admit=getattr(predictor, "admit", None)), prefetch)
    ok = [int(r["frame"]) for r in replay_records if "error" not in r]
    prime_predictor = getattr(predictor, "prime", None)  # a windowed predictor's scene-cut test
    if (motion is not None or callable(prime_predictor)) and ok:
        def take(frame: Frame) -> None:
            if frame.image is None:  # the frame read then cannot be read now: the next shift is measured from nothing
                log.warning("%s: cannot re-read the last finished frame (%s)", frame.name, frame.error)
                return
            if motion is not None:
                motion.prime(frame.image)
            if callable(prime_predictor):
                prime_predictor(frame.image)
        source = _Primed(source, ok[-1], take)
    last = done[-1] if done else None
    _hint(predictor, tracker, last)
    skip = range(len(done))
    for det in detect_frames(predictor, source, skip=skip, shard=False, prefetch=0):  # prefetched above
        image = det.frame.image if det.ok and det.frame is not None else None
        last = _step(tracker, motion, det.record, image)
        step = TrackStep(track_record(det.record, last), last, det)
        _hint(predictor, tracker, last)  # before the next frame is pulled
        yield step
