"""Pictures for people: contrast-stretched frames with detected targets boxed."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["stretch", "draw_overlay"]


def stretch(frame: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """Percentile contrast stretch of any-range frame to uint8 (robust to 16-bit hot pixels)."""
    frame = np.asarray(frame, dtype=np.float32)
    lo, hi = np.percentile(frame, [low, high])
    if hi <= lo:
        hi = lo + 1.0
    return (np.clip((frame - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def draw_overlay(
    frame: np.ndarray,
    targets: Sequence,
    mask: np.ndarray | None = None,
    gt: np.ndarray | None = None,
    scale: int = 1,
) -> Image.Image:
    """RGB image: the stretched frame, predicted mask tinted red, ground truth tinted green, targets boxed red.

    ``targets`` are objects with ``bbox`` = (x0, y0, x1, y1) (e.g. :class:`irstd.inference.targets.Target`).
    """
    gray = stretch(frame)
    rgb = np.stack([gray] * 3, axis=-1).astype(np.float32)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        rgb[m] = 0.4 * rgb[m] + 0.6 * np.array([255, 40, 40])
    if gt is not None:
        g = np.asarray(gt, dtype=bool)
        rgb[g] = 0.5 * rgb[g] + 0.5 * np.array([40, 255, 40])
    image = Image.fromarray(rgb.astype(np.uint8))
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(image)
    for t in targets:
        x0, y0, x1, y1 = t.bbox
        pad = 3
        draw.rectangle(
            [(x0 - pad) * scale, (y0 - pad) * scale, (x1 + 1 + pad) * scale - 1, (y1 + 1 + pad) * scale - 1],
            outline=(255, 60, 60),
            width=max(1, scale),
        )
    return image
