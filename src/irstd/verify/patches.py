"""Fixed-size patches around candidate centres, normalised per patch (the verifier's input).

A patch of side ``size`` (even) centred on ``(x, y)`` covers rows ``cy - size//2 … cy + size//2 - 1`` with
``cy = floor(y + 0.5)`` (columns likewise), so the candidate's pixel sits at index ``size//2`` of the patch.
Outside the frame the frame is mirrored without repeating its edge pixel (``numpy.pad`` mode ``reflect``:
column -1 is column 1), so a patch at a border or corner sees a plausible continuation of the scene and
never a constant band the network could learn as "border".

Normalisation (:func:`normalise_patches`) works in native units: subtract the patch median, divide by a
robust scale (1.4826·MAD, floored at a tenth of the patch's standard deviation, then at 1e-6) and compress
with ``asinh``. It is unchanged by any positive gain and offset of the frame, so 8-bit, 16-bit and float
frames, and a detector's own normalisation, do not matter.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["PATCH_SIZE", "centre_pixel", "extract_patches", "normalise_patches"]

#: the patch side the shipped verifier sees (pixels)
PATCH_SIZE = 32


def centre_pixel(x: float, y: float) -> tuple[int, int]:
    """(row, col) of the pixel a centroid ``(x, y)`` falls in (halves round up)."""
    return int(np.floor(y + 0.5)), int(np.floor(x + 0.5))


def extract_patches(frame: np.ndarray, centres: Sequence[tuple[float, float]], size: int = PATCH_SIZE) -> np.ndarray:
    """(N, size, size) float32 patches of the (H, W) ``frame`` around each ``(x, y)`` of ``centres``.

    The frame is padded once by ``size // 2`` on every side (mode ``reflect``; frames smaller than the pad
    are mirrored repeatedly), then each patch is one slice. Centres outside the frame are clipped to it.
    """
    if size < 2 or size % 2:
        raise ValueError(f"patch size must be even and >= 2, got {size}")
    frame = np.asarray(frame, dtype=np.float32)
    h, w = frame.shape
    half = size // 2
    out = np.empty((len(centres), size, size), dtype=np.float32)
    if not len(centres):
        return out
    padded = np.pad(frame, half, mode="reflect") if min(h, w) > 1 else np.pad(frame, half, mode="edge")
    for i, (x, y) in enumerate(centres):
        r, c = centre_pixel(x, y)
        r, c = min(max(r, 0), h - 1), min(max(c, 0), w - 1)
        # padded row r + half is frame row r: the patch starts half rows above it
        out[i] = padded[r : r + size, c : c + size]
    return out


def normalise_patches(patches: np.ndarray) -> np.ndarray:
    """(N, S, S) native-unit patches → float32 ``asinh((p - median) / scale)`` per patch (see the module)."""
    p = np.asarray(patches, dtype=np.float32)
    n = p.shape[0]
    flat = p.reshape(n, -1)
    med = np.median(flat, axis=1, keepdims=True)  # (N, 1)
    mad = np.median(np.abs(flat - med), axis=1, keepdims=True)
    scale = np.maximum(np.maximum(1.4826 * mad, 0.1 * flat.std(axis=1, keepdims=True)), 1e-6)
    return np.arcsinh((flat - med) / scale).reshape(p.shape).astype(np.float32)
