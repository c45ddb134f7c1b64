"""Pictures for people: contrast-stretched frames with detected targets boxed."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["stretch", "draw_overlay", "draw_tracks"]


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


RAW_COLOUR, CONFIRMED_COLOUR, COASTING_COLOUR = (255, 60, 60), (60, 230, 60), (255, 210, 40)


def draw_tracks(frame: np.ndarray, history: Sequence, scale: int = 3, trail: int = 10) -> Image.Image:
    """RGB image of the last frame of a tracked sequence: raw detections boxed red, confirmed targets boxed
    green (yellow where coasting) with their id and a trail of their last ``trail`` positions.

    ``history``: the tracker's per-frame results up to this frame (objects with ``detections`` (N, >= 2) x, y
    and ``targets``: items with ``id``, ``x``, ``y``, ``predicted``, e.g. :class:`irstd.tracking.FrameResult`).
    Small frames read better upscaled: ``scale`` multiplies the size (nearest neighbour).
    """
    image = Image.fromarray(stretch(frame)).convert("RGB")
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(image)

    def at(x: float, y: float) -> tuple[float, float]:  # pixel centre of (x, y) in the scaled image
        return (x + 0.5) * scale, (y + 0.5) * scale

    last = history[-1]
    r = 3 * scale
    dets = np.asarray(last.detections, dtype=np.float64)
    for x, y in (dets.reshape(len(dets), -1)[:, :2] if dets.size else ()):
        cx, cy = at(x, y)
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], outline=RAW_COLOUR, width=1)
    for t in last.targets:
        path = [at(p.x, p.y) for past in history[-trail:] for p in past.targets if p.id == t.id]
        if len(path) > 1:
            draw.line(path, fill=CONFIRMED_COLOUR, width=max(1, scale // 2))
        cx, cy = at(t.x, t.y)
        colour = COASTING_COLOUR if t.predicted else CONFIRMED_COLOUR
        draw.rectangle([cx - r - 2, cy - r - 2, cx + r + 2, cy + r + 2], outline=colour, width=2)
        draw.text((cx + r + 4, cy - r - 4), str(t.id), fill=colour)
    return image
