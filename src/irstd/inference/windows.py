"""Detection in windows around tracked targets between full-frame passes: the tracking loop's fast path.

A tracker knows where its targets will be in the next frame; a detector only needs to look there.
:class:`WindowedPredictor` wraps a :class:`~irstd.inference.Predictor` and, after :meth:`~WindowedPredictor.set_hints`
gave it the image positions the tracker predicts for the next frame, runs the network only on
``window``×``window`` windows around them (overlapping windows merged, clipped at the borders, all of
one shape batched in one call). Every ``full_every``-th frame, and any frame without hints, runs whole.

**How soon a new target is seen.** A target outside every window is found at the next full pass: at most
``full_every - 1`` frames after it appears (on average about half that), then followed in windows. The
first frame after a scene cut runs whole (``full_on_cut``), so a new scene's targets are seen at once;
so does a frame whose camera test's correlation peak collapses without a cut (``soft_cut``: a zoom step,
a view that changed in part), and the frame after a confirmed track coasted (``full_after_miss``).

**Exactness.** Windows start on multiples of the model's stride, so they see the pooling grid of the
whole frame; they are cut from the frame *after* its normalisation, so the statistics are the full
frame's: the model's stored normalisation, or, for a model without one (classical detectors), the whole
frame's mean and std. A window's own statistics would differ from the frame's (a window around a bright
target has a higher mean and std), so the same target would get another score in a window than in the
full pass. Inside a window, away from its edge, the probabilities equal the full pass up to the
network's receptive field: near a window's edge the network sees zero padding instead of the scene, as
with tiles (:mod:`irstd.inference.tiling`). A window that reaches the frame's border is padded there
exactly as the full frame is.

**Not for classical detectors.** Top-hat and its kin threshold their score map at ``mean + k·std`` of
what they are given (:func:`~irstd.models.classical.adaptive_threshold_logits`): in a window that is the
window's statistics, so a window finds other targets than the full pass. A warning says so.

The :class:`~irstd.inference.Prediction` of a windowed frame holds full-size ``prob`` and ``mask`` arrays
that are **zero outside the windows**; its targets are in frame coordinates.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from ..core.errors import ConfigError
from ..tracking.motion import GlobalMotion, MotionEstimate
from .predictor import Prediction, Predictor
from .targets import Target, extract_targets
from .verifier_protocol import apply_verifier

__all__ = ["WindowedPredictor", "plan_windows"]

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # (y0, x0, y1, x1), stop exclusive


def _axis(c: float, size: int, n: int, stride: int) -> tuple[int, int]:
    """(start, stop) of a window of ``size`` centred near ``c`` on an axis of length ``n``: the start a
    multiple of ``stride``, the window inside [0, n) (at the far border it reaches ``n``)."""
    if size >= n:
        return 0, n
    start = int(np.floor((c - size / 2) / stride)) * stride
    last = (n - size) // stride * stride  # the last aligned start whose window fits; it may stop short of n
    start = min(max(start, 0), last)
    stop = start + size
    if n - stop < stride:  # a sliver the window would miss at the border: reach the border instead
        stop = n
    return start, stop


def _touch(a: Box, b: Box) -> bool:
    """Boxes that overlap or share an edge (a target on the seam would be cut in two)."""
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def plan_windows(points: Iterable[tuple[float, float]], shape: tuple[int, int], window: int,
                 stride: int) -> list[Box]:
    """Disjoint boxes ``(y0, x0, y1, x1)`` covering a ``window``-sized square around each point ``(x, y)``
    of an (H, W) frame: starts on multiples of ``stride``, clipped to the frame, overlapping or touching
    boxes merged into their bounding box (repeated until none touch). Points outside the frame are dropped."""
    h, w = shape
    boxes: list[Box] = []
    for x, y in points:
        if not (np.isfinite(x) and np.isfinite(y)) or not (-window / 2 < x < w + window / 2 and -window / 2 < y < h + window / 2):
            continue
        y0, y1 = _axis(float(y), window, h, stride)
        x0, x1 = _axis(float(x), window, w, stride)
        boxes.append((y0, x0, y1, x1))
    merged = True
    while merged:  # a handful of boxes: the quadratic pass is cheaper than anything clever
        merged = False
        out: list[Box] = []
        for b in boxes:
            for i, o in enumerate(out):
                if _touch(b, o):
                    out[i] = (min(b[0], o[0]), min(b[1], o[1]), max(b[2], o[2]), max(b[3], o[3]))
                    merged = True
                    break
            else:
                out.append(b)
        boxes = out
    return boxes


def _is_classical(model: object) -> bool:
    from ..models.classical import ClassicalDetector

    return isinstance(model, ClassicalDetector)


class WindowedPredictor:
    """A :class:`~irstd.inference.Predictor` that runs full frames every ``full_every`` frames and, in
    between, only windows around the points given by :meth:`set_hints` (see the module docstring).

    Args:
        predictor: the predictor that runs the network (its threshold, normalisation and run mode apply).
        full_every: a full pass every this many frames (1: always full), counted from the last full pass.
        window: the window's side in pixels, rounded up to a multiple of the model's stride.
        warmup: the first this many frames run whole.
        max_windows: with more hinted windows than this (after merging), the frame runs whole (windows
            would cost about as much); None: no limit.
        full_on_cut: test every frame for a scene cut (:class:`~irstd.tracking.GlobalMotion`, phase
            correlation on a 4×4-averaged copy, ≈ 1.5 ms at 640×512) and run the first frame of a new
            scene whole: the hints of the old scene point nowhere, and the new scene's targets would
            otherwise wait for the next scheduled full pass.
        linger: a hinted point keeps its window this many frames after its last hint (at its last
            position): a dim target whose young track died after a missed frame is still looked at where
            it was, as the full frame would (0: only the latest hints).
        soft_cut: with ``full_on_cut``, a frame whose phase-correlation peak falls below this fraction of
            the median peak of the clip's last 8 frames (0.5 assumed at a clip's first frame) runs whole,
            though it is no cut (a zoom step, a view that changed in part: new targets may be in it); the
            hints stay. 0: off. 0.8 (chosen on seq4 of ISTD-sequences and generated sequences,
            docs/tracking.md): 18 of 20 generated 6 % zoom steps, under 1 extra pass per 100 frames.
        full_after_miss: the frame after one whose hints said a confirmed track was missed
            (``set_hints(..., missed=True)``, as the tracking loop says it) runs whole: a target that
            left its window is looked for everywhere at once.
    """

    def __init__(self, predictor: Predictor, *, full_every: int = 10, window: int = 64, warmup: int = 1,
                 max_windows: int | None = None, full_on_cut: bool = True, linger: int = 3,
                 soft_cut: float = 0.8, full_after_miss: bool = True) -> None:
        if full_every < 1:
            raise ConfigError(f"full_every must be >= 1, got {full_every}")
        if window < 1:
            raise ConfigError(f"window must be >= 1, got {window}")
        if not 0.0 <= soft_cut < 1.0:
            raise ConfigError(f"soft_cut must be in [0, 1), got {soft_cut}")
        self.soft_cut = soft_cut
        self.full_after_miss = full_after_miss
        self._missed = False  # the last hints said a confirmed track was missed
        self._peaks: list[float] = []  # the clip's last phase-correlation peaks (the soft cut's reference)
        self.soft_cuts = 0  # frames run whole by the soft cut
        self.miss_passes = 0  # frames run whole after a missed confirmed track
        self.predictor = predictor
        self.full_every = full_every
        stride = int(predictor.stride)
        self.window = -(-window // stride) * stride
        self.warmup = warmup
        self.max_windows = max_windows
        self._hints: list[tuple[float, float]] | None = None
        self.linger = linger
        self._old: list[tuple[float, float, int]] = []  # earlier hints still looked at: x, y, frames left
        self._seen = 0  # frames predicted so far
        self._since_full = 0  # frames since the last full pass (0: the last frame was one)
        self.full_frames = 0
        self.window_frames = 0
        self.last_windows: list[Box] = []  # the windows of the last frame ([] after a full pass)
        self._motion = GlobalMotion() if full_on_cut else None
        self.cuts = 0
        self.last_motion: MotionEstimate | None = None  # the scene-cut test's estimate of the last frame
        self.last_full = False  # the last frame ran whole
        if _is_classical(getattr(predictor, "model", None)):
            log.warning("%s thresholds at its input's own statistics: windows will not reproduce the full "
                        "frame's targets (see irstd.inference.windows)", type(predictor.model).__name__)

    # what callers read of a Predictor
    @property
    def threshold(self) -> float:
        return self.predictor.threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self.predictor.threshold = value

    def __getattr__(self, name: str) -> Any:  # stride, normalization, device, mode, backend, …
        if name == "predictor":  # not yet set (copy/pickle): no recursion
            raise AttributeError(name)
        return getattr(self.predictor, name)

    def label(self) -> str:
        """The wrapped predictor's label with the schedule, e.g. ``fp32 eager, windows 64 px, full every 10``."""
        return f"{self.predictor.label()}, windows {self.window} px, full every {self.full_every}"

    def set_hints(self, points: Iterable[Any] | None, *, missed: bool = False) -> None:
        """Image positions ``(x, y)`` (column, row; pixels) where targets are expected in the *next* frame,
        e.g. the tracker's predicted tracks. Used by the next frame only; an empty list or None makes it
        a full pass. ``missed``: a confirmed track had no detection in the last frame (with
        ``full_after_miss``, the next frame runs whole)."""
        self._missed = bool(missed)
        self._hints = None if points is None else [(float(p[0]), float(p[1])) for p in points]
        if self.linger and self._hints:
            kept = [(x, y, n - 1) for x, y, n in self._old if n > 0]
            self._old = kept + [(x, y, self.linger) for x, y in self._hints]
            self._hints = self._hints + [(x, y) for x, y, _ in kept]

    def _full_due(self, frame: np.ndarray) -> bool:
        est = None
        if self._motion is not None and np.ndim(frame) == 2:
            est = self._motion.update(np.asarray(frame, dtype=np.float32))  # every frame: the test needs the pair
        self.last_motion = est
        self.cuts += bool(est is not None and est.cut)
        return self._due(est)

    def _soft(self, est: MotionEstimate | None) -> bool:
        """Whether ``est`` is a soft cut (see ``soft_cut``); keeps the clip's recent peaks."""
        if est is None:
            return False
        ref = float(np.median(self._peaks)) if self._peaks else 0.5
        first = self._seen == 0  # the first frame's estimate is a placeholder (no pair yet)
        soft = not est.cut and not first and est.peak < self.soft_cut * ref
        self._peaks = [] if est.cut or first else (self._peaks + [est.peak])[-8:]
        return soft

    def _due(self, est: MotionEstimate | None) -> bool:
        """Whether the frame now due runs whole (the schedule, the hints, a scene cut, a soft cut, a miss)."""
        cut = bool(est is not None and est.cut)
        if cut:
            self._old = []
        soft = self._soft(est)
        usual = cut or self._seen < self.warmup or not self._hints or self._since_full + 1 >= self.full_every
        if usual:
            return True
        if soft:
            self.soft_cuts += 1
            return True
        if self.full_after_miss and self._missed:
            self.miss_passes += 1
            return True
        return False

    def _advance(self, full: bool) -> None:
        self._since_full = 0 if full else self._since_full + 1
        self._hints = None
        self._missed = False
        self._seen += 1

    def skip_frame(self, shape: tuple[int, int], motion: MotionEstimate | None = None) -> None:
        """Advance the schedule over a frame of ``shape`` (H, W) that an earlier run did, as :meth:`predict`
        did then, without its pixels: a resumed run (after the hints that frame had) then continues the
        full-frame schedule where the interrupted one stopped instead of starting it afresh. ``motion``:
        the camera estimate stored for that frame (its scene-cut test, the same as this class's with the
        tracker's default camera parameters); None when the run stored none (compensation off), taken
        as no cut. Call :meth:`prime` with the last finished frame before the next :meth:`predict`."""
        est = None
        if self._motion is not None and motion is not None:
            self._motion.replay(shape, motion)
            est = motion
        self._advance(self._due(est))

    def prime(self, frame: np.ndarray) -> None:
        """Take ``frame`` (the last frame an earlier run did) as the previous frame of the scene-cut test."""
        if self._motion is not None and np.ndim(frame) == 2:
            self._motion.prime(np.asarray(frame, dtype=np.float32))

    def predict(self, frames: np.ndarray | Sequence[np.ndarray]) -> list[Prediction]:
        """One :class:`Prediction` per frame; the hints apply to the first frame of the call, later
        frames of the same call run by the schedule without hints (full)."""
        if isinstance(frames, np.ndarray) and frames.ndim == 2:
            frames = [frames]
        out = []
        for frame in frames:
            full = self._full_due(frame)
            if full:
                pred = self.predictor.predict([frame])[0]
                self.full_frames += 1
                self.last_windows = []
            else:
                pred = self._windowed(frame, self._hints or [])
                self.window_frames += 1
            self.last_full = full
            self._advance(full)
            out.append(pred)
        return out

    @torch.inference_mode()
    def _windowed(self, frame: np.ndarray, hints: list[tuple[float, float]]) -> Prediction:
        p = self.predictor
        x = p._normalise(frame)  # (H, W) float32: the whole frame's statistics and range policy
        boxes = plan_windows(hints, x.shape, self.window, int(p.stride))
        if not boxes or (self.max_windows is not None and len(boxes) > self.max_windows):
            self.last_windows = []
            return p.prediction(p.probabilities([frame])[0], frame=frame)
        self.last_windows = boxes
        crops = [np.ascontiguousarray(x[b[0]:b[2], b[1]:b[3]]) for b in boxes]
        maps: list[np.ndarray | None] = [None] * len(crops)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, c in enumerate(crops):
            by_shape.setdefault(c.shape, []).append(i)
        for indices in by_shape.values():  # every window of one shape in one batch (batch_size at a time)
            for start in range(0, len(indices), p.batch_size):
                chunk = indices[start:start + p.batch_size]
                for i, m in zip(chunk, p._run([crops[i] for i in chunk])):
                    maps[i] = m
        prob = np.zeros(x.shape, dtype=np.float32)
        mask = np.zeros(x.shape, dtype=bool)
        targets: list[Target] = []
        for (y0, x0, y1, x1), m in zip(boxes, maps):
            win_mask = m > p.threshold
            prob[y0:y1, x0:x1] = m
            mask[y0:y1, x0:x1] = win_mask
            for t in extract_targets(m, win_mask, p.connectivity, p.merge_distance):  # disjoint windows: no target twice
                bx0, by0, bx1, by1 = t.bbox
                targets.append(Target(t.x + x0, t.y + y0, t.area, (bx0 + x0, by0 + y0, bx1 + x0, by1 + y0), t.peak))
        if p.verifier is not None:
            mask, targets = apply_verifier(p.verifier, np.asarray(frame), mask, targets, p.connectivity,
                                                 p.merge_distance)
        return Prediction(prob, mask, targets)
