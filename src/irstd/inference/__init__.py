"""Inference: run a trained network (or a classical detector) on raw frames.

:class:`Predictor` normalises frames, pads them to the stride, runs a runner and extracts targets.
Runners (:mod:`.runner`) execute a network in a run mode (:mod:`.modes`: ``fp32`` or ``fast``) or in
another backend (:mod:`.backends.onnx`). :mod:`.sources` finds frames on disk; :mod:`.schema` is the
one detection output format.
"""

from .backends.onnx import OnnxRunner
from .modes import PRECISIONS, RunMode, resolve_mode
from .predictor import Prediction, Predictor, load_predictor_model
from .rewrites import fuse_conv_bn
from .runner import ModelRunner, Runner
from .targets import Target, extract_targets

__all__ = [
    "PRECISIONS",
    "ModelRunner",
    "OnnxRunner",
    "Prediction",
    "Predictor",
    "RunMode",
    "Runner",
    "Target",
    "extract_targets",
    "fuse_conv_bn",
    "load_predictor_model",
    "resolve_mode",
]
