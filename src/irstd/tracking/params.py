"""The tracker's parameters, with their defaults and what each one trades."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..core.errors import ConfigError
from .camera import MODELS


@dataclass(frozen=True)
class TrackerParams:
    """Parameters of :class:`~irstd.tracking.Tracker` (chosen on ISTD-sequences seq4 only: docs/tracking.md).

    Association:
        gate: largest distance (px, scene coordinates) between a track's predicted position and a
            detection it may take. Limit: a new track has no velocity, so a target moving farther than
            this per frame relative to the scene (image speed plus a pan's, when it crosses against it)
            and in the image starts a new track at every detection and is never confirmed
            (docs/tracking.md, "Limits"; ``birth_image`` lifts the bound in the scene).
        gate_sigmas: a track's gate is this many standard deviations of its predicted position,
            clipped to [gate_min, gate]: tight for a settled track, wide for a new one.
        gate_min: smallest gate (px).
        meas_std: centroid noise of a detection (px).
        accel_std: the Kalman filter's white acceleration (px/frame²): how fast a target may turn.
        speed_std: prior std of a new track's speed (px/frame).
        birth_gate, birth_image, birth_second_pass, birth_span: a wider association for a track with one
            detection (no velocity yet), in the first ``birth_span`` frames after its birth: it may also take a detection within ``birth_gate`` px of it in the scene
            (0: off; flat, not clipped by ``gate``), and (``birth_image``) a detection within its gate of
            its one detection in IMAGE coordinates (a target crossing against a pan steps less in the
            image than in the scene). Costs are compared in one assignment with every other track's, or,
            with ``birth_second_pass``, only among the tracks and detections the first, ordinary
            assignment left over. The motion tests that confirm stay in scene coordinates. Chosen on seq4
            and generated sequences (docs/tracking.md, fifth pass): ``birth_image`` with the second pass,
            ``birth_span`` 1, ``birth_gate`` 0 (a wider scene gate added false targets on seq4 and
            generated clutter): seq4 online Pd 86.4 → 86.9 % at equal false targets, a generated target
            crossing a pan at 11-14 px/frame in the scene found online in 91.8 % of frames from 54.4.
        birth_early: a track whose second detection came through that wider association may be
            confirmed by ``early_step`` at it; off (the default), such a track waits for the line test
            (3 detections): two clutter spots near each other step like a fast target once, not along a
            line (on, a generated test sequence confirmed such a pair for two frames).
    Life of a track:
        birth_hits, birth_window: a track is established after ``birth_hits`` detections within its
            last ``birth_window`` frames (M of N); a track not yet established dies as soon as it
            cannot reach that any more.
        max_misses: an established track dies after this many consecutive frames without a detection.
        coast: a confirmed track missed in a frame is reported at its predicted position, flagged
            ``predicted``, for up to this many consecutive misses.
        birth_score: detections scoring below this extend a track but never start one (feed the
            detector's lower-threshold candidates with this at the detector's threshold).
    Confirmation (an established track becomes a target, and stays one):
        min_displacement, motion_window, max_residual: it moved steadily relative to the scene: a
            line at constant speed through its detections of the last ``motion_window`` frames (at least
            3) is ≥ ``min_displacement`` px long and misses them by ≤ ``max_residual`` px rms (a track
            hopping between clutter spots fits no line). Slowest target confirmed by motion:
            ``min_displacement / (motion_window - 1)`` px/frame (0.625 by default).
        early_step: or, sooner: a new track detected in the two frames since its birth that moved at least
            this far (px, in the scene; and ``min_image_displacement`` in the image) between them is
            established and a target at its second detection, a frame before the line above can be
            fitted (3 detections). Two points always fit a line, so steadiness is not tested first: a
            track that then fails is released by ``release_after``. 0 turns this off. Chosen on seq4: 5
            (online Pd 85.0 → 86.4 % at equal false targets; 4 px one frame more there but more false
            targets for dense detectors and on generated clutter; births M of N changed nothing there).
        min_image_displacement: …and the same line through its image positions is at least this long:
            a spot fixed in the image while the camera pans (a sensor defect, an overlay) moves in the
            scene but is no target. Limit: a target the camera keeps centred is left to the hover rule.
            0 turns this off.
        hover_frames, hover_score: or it was detected in ``hover_frames`` consecutive frames, each
            with a score ≥ ``hover_score``, and stands still in the scene (a hovering target); 0 turns
            this rule off. Limit: static clutter that scores that high for that long is confirmed too.
        release_after: a confirmed track whose detections fail both tests in this many consecutive frames
            in which it was detected is a target no more (until it passes again): a track that took over
            a clutter spot while its target was missed must not stay a target (released within
            ``motion_window + release_after`` frames of the take-over); 0 keeps confirmation for life.
            Chosen on seq4: 5 (3 cost 1.4 points of online Pd there; 5 and 8 none; 5 cut the full-width
            model's online false targets from 0.41 to 0.31 per frame, 8 to 0.33). Limit: a target that
            stops in the scene is released until the hover rule takes it.
    Camera:
        compensate: estimate the global shift between frames (phase correlation) and associate in
            scene coordinates; needs the frames.
        camera: the camera model of the compensation: ``translation`` (a shift per frame), ``similarity``
            (shift, zoom and rotation; the default) or ``affine`` (also shear: a pan in perspective, to first
            order); :class:`~irstd.tracking.motion.GlobalMotion`. Beyond the shift, static clutter stays put
            through a zoom, a rotation and (similarity: partly) the perspective of a pan, for about 1 ms more
            per 640×512 frame. Chosen on seq4 and generated sequences (docs/tracking.md, fourth pass):
            similarity with ``min_warp`` 0.5 changed nothing on seq4 for the two networks and removed every
            false target of generated zoom and rotation sequences (0.5-1.0 per frame with translation).
        min_warp: with ``camera`` beyond the shift, a frame whose fitted zoom, rotation and shear move no
            frame corner by this many px (against the shift alone) keeps the shift alone: 0 fits every frame,
            and seq4's sub-pixel fits (noise) then cost false targets (0.019 -> 0.075 per frame); 1 misses a
            zoom of 0.5 % per frame at 256×320. Chosen: 0.5.
        downsample, cut_ratio, max_shift: of :class:`~irstd.tracking.motion.GlobalMotion`; a scene cut
            ends every track (new ids follow).
    """

    gate: float = 10.0
    gate_sigmas: float = 3.0
    gate_min: float = 3.0
    meas_std: float = 1.0
    accel_std: float = 2.0
    speed_std: float = 4.0
    birth_gate: float = 0.0
    birth_image: bool = True
    birth_second_pass: bool = True
    birth_span: int = 1
    birth_early: bool = False
    birth_hits: int = 3
    birth_window: int = 5
    max_misses: int = 3
    coast: int = 1
    birth_score: float = 0.0
    min_displacement: float = 5.0
    motion_window: int = 9
    max_residual: float = 2.0
    early_step: float = 5.0
    min_image_displacement: float = 3.0
    hover_frames: int = 50
    hover_score: float = 0.9
    release_after: int = 5
    compensate: bool = True
    camera: str = "similarity"
    min_warp: float = 0.5
    downsample: int = 4
    cut_ratio: float = 0.3
    max_shift: float = 64.0

    def __post_init__(self) -> None:
        if not 1 <= self.birth_hits <= self.birth_window <= 62:
            raise ConfigError(f"need 1 <= birth_hits <= birth_window <= 62, got {self.birth_hits} of {self.birth_window}")
        for name in ("gate", "gate_min", "meas_std", "speed_std", "gate_sigmas"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"tracker parameter {name} must be > 0, got {getattr(self, name)}")
        for name in ("max_misses", "coast", "hover_frames", "release_after", "accel_std", "min_displacement", "min_image_displacement",
                     "early_step", "min_warp", "birth_gate"):
            if getattr(self, name) < 0:
                raise ConfigError(f"tracker parameter {name} must be >= 0, got {getattr(self, name)}")
        if self.birth_span < 1:
            raise ConfigError(f"birth_span must be >= 1 frame, got {self.birth_span}")
        if self.motion_window < 2:
            raise ConfigError(f"motion_window must be >= 2 frames, got {self.motion_window}")
        if self.camera not in MODELS:
            raise ConfigError(f"camera model must be one of {', '.join(MODELS)}, got {self.camera!r}")
        if self.gate_min > self.gate:
            raise ConfigError(f"gate_min ({self.gate_min}) exceeds gate ({self.gate})")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
