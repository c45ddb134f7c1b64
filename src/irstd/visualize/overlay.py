"""Pictures for people: contrast-stretched frames with detected targets boxed."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["stretch", "draw_overlay", "draw_tracks", "upscale_factor"]

#: small frames are drawn enlarged so that their short side has at least this many pixels
MIN_SHORT_SIDE = 256


def upscale_factor(shape: tuple[int, ...], short_side: int = MIN_SHORT_SIDE) -> int:
    """The integer factor that brings a frame of ``shape`` (H, W) to ``short_side`` px on its short side
    (1 for frames already that large): boxes around 3-pixel targets stay visible."""
    h, w = shape[:2]
    return max(1, -(-short_side // max(1, min(h, w))))


def stretch(frame: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """Percentile contrast stretch of any-range frame to uint8 (robust to 16-bit hot pixels)."""
    frame = np.asarray(frame, dtype=np.float32)
    lo, hi = np.percentile(frame, [low, high])
    if hi <= lo:
        hi = lo + 1.0
    return (np.clip((frame - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def _label_font() -> ImageFont.ImageFont:
    """PIL's built-in font at 14 px where Pillow can scale it (10.1+), else its bitmap font."""
    try:
        return ImageFont.load_default(size=14)
    except TypeError:
        return ImageFont.load_default()


def draw_overlay(
    frame: np.ndarray,
    targets: Sequence,
    mask: np.ndarray | None = None,
    gt: np.ndarray | None = None,
    scale: int = 1,
    scores: bool = False,
) -> Image.Image:
    """RGB image: the stretched frame, predicted mask tinted red, ground truth tinted green, targets boxed red.

    ``targets`` are objects with ``bbox`` = (x0, y0, x1, y1) (e.g. :class:`irstd.inference.targets.Target`);
    ``scale`` enlarges the frame before drawing (:func:`upscale_factor`); ``scores`` writes each target's
    ``peak`` probability beside its box.
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
        if scores and getattr(t, "peak", None) is not None:
            at = ((x1 + 1 + pad) * scale + 2, (y0 - pad) * scale)
            font = _label_font()
            draw.rectangle(draw.textbbox(at, f"{t.peak:.2f}", font=font), fill=(0, 0, 0))  # readable on clutter
            draw.text(at, f"{t.peak:.2f}", fill=(255, 220, 0), font=font)
    return image


def draw_tracks(
    frame: np.ndarray,
    raw_boxes: Sequence[tuple[int, int, int, int]],
    confirmed: Sequence[tuple[int, float, float, tuple[int, int, int, int] | None]],
    trails: dict[int, Sequence[tuple[float, float]]] | None = None,
    scale: int = 1,
) -> Image.Image:
    """RGB image of one tracked frame: raw detections boxed red, confirmed targets boxed green with their
    track id, each confirmed track's recent positions as a yellow trail.

    ``raw_boxes``: (x0, y0, x1, y1) inclusive pixel boxes; ``confirmed``: (id, x, y, box or None for a predicted
    position, drawn as a 3×3 box); ``trails``: id → positions (x, y), oldest first; ``scale``
    enlarges the frame (small frames) before drawing.
    """
    gray = stretch(frame)
    image = Image.fromarray(np.stack([gray] * 3, axis=-1))
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(image)
    s, pad = scale, 2

    def box(b: tuple[float, float, float, float], colour: tuple[int, int, int], p: int) -> None:
        x0, y0, x1, y1 = b
        draw.rectangle([(x0 - p) * s, (y0 - p) * s, (x1 + 1 + p) * s - 1, (y1 + 1 + p) * s - 1], outline=colour,
                       width=max(1, s // 2))

    for b in raw_boxes:
        box(b, (255, 60, 60), pad)
    for tid, pts in (trails or {}).items():
        if len(pts) > 1:
            draw.line([((x + 0.5) * s, (y + 0.5) * s) for x, y in pts], fill=(255, 220, 0), width=max(1, s // 2))
    for tid, x, y, b in confirmed:
        if b is None:  # predicted (coasting): a box around the predicted centre
            b = (x - 1, y - 1, x + 1, y + 1)
        box(b, (60, 255, 60), pad + 2)
        draw.text(((b[2] + 1 + pad + 3) * s, (b[1] - pad - 2) * s), str(tid), fill=(60, 255, 60))
    return image
