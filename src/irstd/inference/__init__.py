"""Inference: run a trained network (or a classical detector) on raw frames.

:class:`Predictor` normalises frames, pads them to the stride, runs a runner and extracts targets.
Runners (:mod:`.runner`) execute a network in a run mode (:mod:`.modes`: ``fp32`` or ``fast``) or in
another backend (:mod:`.backends.onnx`). :mod:`.sources` yields frames (files, folders, globs, TIFF stacks,
videos, a caller's arrays); :func:`.pipeline.detect_frames` runs a predictor over a source and yields one
record per frame; :class:`.windows.WindowedPredictor` runs windows around tracked targets between
full-frame passes; :mod:`.records` writes them as JSON Lines; :mod:`.schema` is the one detection output format.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

if TYPE_CHECKING:
    from .backends.onnx import OnnxRunner
    from .modes import PRECISIONS, RunMode, resolve_mode
    from .predictor import Prediction, Predictor, load_predictor_model
    from .pipeline import Detection, detect_frames
    from .rewrites import fuse_conv_bn
    from .runner import ModelRunner, Runner
    from .sources import Frame, FrameSource, open_source
    from .targets import Target, extract_targets
    from .windows import WindowedPredictor

__all__ = [
    "PRECISIONS",
    "Detection",
    "Frame",
    "FrameSource",
    "ModelRunner",
    "OnnxRunner",
    "Prediction",
    "Predictor",
    "RunMode",
    "Runner",
    "Target",
    "WindowedPredictor",
    "extract_targets",
    "detect_frames",
    "fuse_conv_bn",
    "load_predictor_model",
    "open_source",
    "resolve_mode",
]

__getattr__, __dir__ = lazy_exports(__name__)
