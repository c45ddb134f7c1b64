"""Tracking of point-like targets over frame sequences, and temporal confirmation of detections.

:class:`Tracker` associates each frame's detections with tracks (constant-velocity Kalman, gated optimal
assignment), compensates the camera's motion (:class:`GlobalMotion`: phase correlation for the shift, a
fit to block shifts for zoom and rotation, :mod:`.camera`) and confirms a
track as a target only once it moves relative to the scene (or hovers with a high score for long).
:mod:`.evaluation` scores raw and confirmed detections against point labels. Pure numpy/scipy.
"""

from .motion import GlobalMotion, MotionEstimate
from .params import TrackerParams
from .tracker import FrameResult, TrackedTarget, Tracker, as_detections, confirm_offline, track

__all__ = [
    "FrameResult",
    "GlobalMotion",
    "MotionEstimate",
    "TrackedTarget",
    "Tracker",
    "TrackerParams",
    "as_detections",
    "confirm_offline",
    "track",
]
