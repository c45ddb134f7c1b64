"""Input-range policy: bring a frame into the value range the model was trained on.

A checkpoint records its training frames' range (``input_range``: bit depth, full scale, robust
low/high; see :func:`irstd.data.stats.compute_input_range`). A 16-bit frame given to a model fitted on
8-bit data would otherwise be normalised with 8-bit statistics in 16-bit units: every pixel looks like a
target. Policies (``--input-range``):

``auto`` (default)
    a frame read from a file (:func:`irstd.data.io.load_image`) is decided by the bit depth its file
    *declares* (:func:`irstd.data.io.declared_bit_depth`: 8 for 8-bit containers, 16 for 16-bit ones, or
    the significant bits a 16-bit file declares), never by its values: the same bit depth as the
    training frames' is used as is, another is ``scale``\\d by training full scale / declared full
    scale. So the same scene gives the same frame whatever its container (8-bit, or x257 in 16 bits),
    and a dark 16-bit frame stays a 16-bit frame. A frame that declares nothing (a float array built in
    Python) falls back to a guess from its values: within the training bit depth it is used as is, a
    wider one is scaled when that keeps a contrast like the training frames', else ``stretch``\\ed.
    Each adjustment is logged once.
``native``
    never change the frame (a mismatch is still logged).
``scale``
    multiply by training full scale / frame full scale (e.g. 255 / 65535) whenever they differ.
``stretch``
    map the frame's robust low/high (0.5th/99.5th percentiles) linearly onto the training ones, clipped
    to the training full scale: what a camera's automatic gain control does to make 8-bit video.

Without a recorded range (older checkpoints) ``auto`` keeps the frame; ``stretch`` and ``scale``
estimate the range from the checkpoint's (mean, std). A training range recorded from values (older
checkpoints, generated data) with a depth of 10, 12 or 14 bits was read from 16-bit files: declared
frames are compared with that container's full scale (65535).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..core.errors import ConfigError
from ..data.io import declared_bit_depth
from ..data.stats import frame_bit_depth, frame_range

__all__ = ["INPUT_RANGE_POLICIES", "adapt_range", "check_policy", "estimate_range"]

log = logging.getLogger(__name__)

INPUT_RANGE_POLICIES = ("auto", "native", "scale", "stretch")

# under auto, scaling is kept when the scaled frame's robust span is at least this share of the training
# span; below it the frame would look nearly flat to the model, so it is stretched instead
_MIN_CONTRAST = 0.25


def check_policy(policy: str) -> str:
    """``policy`` if known, else :class:`ConfigError` listing the choices."""
    if policy not in INPUT_RANGE_POLICIES:
        raise ConfigError(f"input range policy must be one of {', '.join(INPUT_RANGE_POLICIES)}, got {policy!r}")
    return policy


def estimate_range(normalization: tuple[float, float] | None) -> dict[str, Any] | None:
    """A training range guessed from (mean, std) when the checkpoint records none: mean ± 2.5 std,
    on the smallest bit depth holding mean + 3 std."""
    if normalization is None:
        return None
    mean, std = float(normalization[0]), float(normalization[1])
    bits, full = frame_bit_depth(np.array([mean + 3 * std, 2.0]))  # 2.0: an integer scale, never "float"
    return {"bit_depth": bits, "full_scale": full, "low": max(mean - 2.5 * std, 0.0),
            "high": min(mean + 2.5 * std, full), "estimated": True}


def _scale(frame: np.ndarray, full: float, train_full: float) -> np.ndarray:
    return (frame * np.float32(train_full / full)).astype(np.float32, copy=False)


def _stretch(frame: np.ndarray, train: dict[str, Any]) -> np.ndarray:
    lo, hi = frame_range(frame)
    gain = (float(train["high"]) - float(train["low"])) / (hi - lo)
    out = (frame - np.float32(lo)) * np.float32(gain) + np.float32(train["low"])
    return np.clip(out, 0.0, float(train["full_scale"])).astype(np.float32, copy=False)


def _training_full_scale(train: dict[str, Any]) -> float:
    """The full scale of the training frames' container, to compare a declared frame with."""
    bits = int(train.get("bit_depth", 8))
    if not train.get("declared") and bits in (10, 12, 14):
        return 65535.0  # a depth guessed from values below 16 bits: the frames came in 16-bit files
    return float(train["full_scale"])


def adapt_range(frame: np.ndarray, train: dict[str, Any] | None, policy: str = "auto", *,
                bit_depth: int | None = None) -> tuple[np.ndarray, str]:
    """``(frame, action)`` with ``frame`` (H, W) float32 moved into the training range by ``policy``.

    ``bit_depth``: the frame's declared bit depth; by default :func:`~irstd.data.io.declared_bit_depth`
    (a frame from :func:`~irstd.data.io.load_image` carries it). ``action`` is ``native``, ``scaled``,
    ``stretched`` or ``mismatch`` (native kept despite a mismatch).
    """
    declared = bit_depth if bit_depth is not None else declared_bit_depth(frame)
    frame = np.asarray(frame, dtype=np.float32)
    if declared is not None:
        return _adapt_declared(frame, train, policy, float(2**int(declared) - 1))
    if policy == "native" or train is None:
        if train is not None and frame_bit_depth(frame)[1] > float(train["full_scale"]):
            return frame, "mismatch"
        return frame, "native"
    bits, full = frame_bit_depth(frame)
    train_full = float(train["full_scale"])
    if policy == "stretch":
        return _stretch(frame, train), "stretched"
    if policy == "scale":
        return (frame, "native") if full == train_full else (_scale(frame, full, train_full), "scaled")
    # auto: a frame within the training scale (also a float frame for a float model) is left alone
    if full <= train_full and not (bits == 0 and int(train.get("bit_depth", 8)) > 0):
        return frame, "native"
    scaled = _scale(frame, full, train_full)
    lo, hi = frame_range(scaled)
    if hi - lo >= _MIN_CONTRAST * (float(train["high"]) - float(train["low"])):
        return scaled, "scaled"
    return _stretch(frame, train), "stretched"


def _adapt_declared(frame: np.ndarray, train: dict[str, Any] | None, policy: str,
                    full: float) -> tuple[np.ndarray, str]:
    """:func:`adapt_range` for a frame whose container declares its full scale ``full``: ``auto`` and
    ``scale`` depend on ``full`` and the training range only, not on the frame's values."""
    if train is None:
        return frame, "native"
    train_full = _training_full_scale(train)
    if policy == "native":
        return frame, ("mismatch" if full > train_full else "native")
    if policy == "stretch":
        return _stretch(frame, train), "stretched"
    return (frame, "native") if full == train_full else (_scale(frame, full, train_full), "scaled")
