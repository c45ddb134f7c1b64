"""Normalisation and the training/eval sample: the one place for the std floor and ``(x − mean) / std``.

Every consumer of frames goes through :func:`normalize`: the disk dataset, the synthetic dataset and the
predictor (which falls back to :func:`frame_normalization` for a model without stored statistics). One
formula keeps training and inference bit-identical: the frame is float32 and the statistics are cast
to float32 *before* the arithmetic, so the result is float32 whatever numpy's promotion rules.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import numpy as np

from ..core.errors import DataError

if TYPE_CHECKING:
    import torch

__all__ = [
    "MIN_STD",
    "Normalization",
    "Sample",
    "Transform",
    "check_normalization",
    "floor_std",
    "frame_normalization",
    "make_item",
    "normalize",
]

#: floor on every std used for normalising, so a constant frame or dataset never divides by zero
MIN_STD = 1e-6

#: (mean, std) in the frames' native range (0..255 for 8-bit, 0..65535 for 16-bit)
Normalization = tuple[float, float]


class Sample(TypedDict):
    """One training/evaluation item as the datasets yield it (before batching)."""

    image: torch.Tensor  # (1, H, W) float32, (x − mean) / std
    mask: torch.Tensor  # (1, H, W) float32 in {0, 1}
    name: str  # stem
    path: str  # image file, or a ``synthetic:seed/stream/index`` URI


#: a joint image/mask transform on a sample (crop, flip, …): takes and returns the sample dict
Transform = Callable[[Sample], Sample]


def floor_std(std: float) -> float:
    """``std`` raised to at least :data:`MIN_STD`."""
    return max(float(std), MIN_STD)


def check_normalization(normalization: tuple[float, float]) -> Normalization:
    """``(mean, std)`` as Python floats; raises :class:`DataError` unless ``std > 0``."""
    mean, std = float(normalization[0]), float(normalization[1])
    if not std > 0:  # also rejects NaN
        raise DataError(f"normalisation std must be > 0, got {std}")
    return mean, std


def frame_normalization(frame: np.ndarray) -> Normalization:
    """Per-frame fallback statistics: ``(mean, max(std, MIN_STD))`` of the frame taken as float32.

    For a model that stores no dataset statistics; the sums run in float32 like the frame itself.
    """
    x = np.asarray(frame, dtype=np.float32)
    return float(x.mean()), floor_std(float(x.std()))


def normalize(frame: np.ndarray, normalization: tuple[float, float]) -> np.ndarray:
    """``(frame − mean) / max(std, MIN_STD)`` as float32, same shape as ``frame``.

    The frame is taken as float32 (no copy when it already is) and mean and std are cast to float32
    first, so the arithmetic never promotes to float64.
    """
    mean, std = normalization
    x = np.asarray(frame, dtype=np.float32)
    return (x - np.float32(mean)) / np.float32(floor_std(std))


def make_item(image: np.ndarray, mask: np.ndarray, name: str, path: str | Path,
              normalization: tuple[float, float]) -> Sample:
    """The sample of one frame: ``image`` float32 (H, W) native range, ``mask`` bool (H, W).

    Both become (1, H, W) float32 tensors (a leading channel axis), the image normalised.
    """
    import torch  # late: normalisation and statistics (input-range checks, ``irstd detect --help``) need no torch

    return {
        "image": torch.from_numpy(normalize(image, normalization))[None],  # (1, H, W)
        "mask": torch.from_numpy(np.asarray(mask).astype(np.float32))[None],  # (1, H, W) in {0, 1}
        "name": str(name),
        "path": str(path),
    }
