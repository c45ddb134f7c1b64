"""Dim point targets planted into real frames: positives that look like faint 1–4 px targets in real clutter.

:func:`plant_targets` adds ``n`` small Gaussian blobs to a copy of a frame at random sub-pixel positions
(away from the border, from each other and from an ``avoid`` mask), each with a peak amplitude of
``snr`` times the local noise. The local noise is measured on the frame itself, in a window around the
position, from horizontal pixel differences (``1.4826·MAD(d) / √2``: for white noise ``var(d) = 2σ²``,
and the differences ignore smooth structure), floored at 1/256 of the frame's 1–99 % range, so a planted
target is faint against the sensor noise, not against the scene. Integer frames are rounded and clipped
to their type's range after planting, as a sensor would saturate and quantise; float frames within
0…255 (0…65535) are clipped to that range too (and rounded when integer-valued), so the planted frame's
range, and a detector's normalisation of it, stay the frame's. The same seed gives the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Planted", "local_noise", "plant_targets"]

#: half side of the window a blob is drawn in (its sigma stays below 1.5 px)
_HALF = 4


@dataclass(frozen=True)
class Planted:
    """One planted blob: sub-pixel centre ``(x, y)``, peak amplitude in frame units, its SNR and sigmas."""

    x: float
    y: float
    amplitude: float
    snr: float
    sigma: tuple[float, float]  #: (along x, along y) pixels


def local_noise(frame: np.ndarray, row: int, col: int, half: int = 16, floor: float = 0.0) -> float:
    """Robust sensor-noise sigma of the (H, W) ``frame`` in the window of ``half`` px around (row, col)."""
    h, w = frame.shape
    win = frame[max(row - half, 0) : min(row + half, h), max(col - half, 0) : min(col + half, w)].astype(np.float64)
    d = np.diff(win, axis=1).ravel()
    if d.size == 0:
        return float(floor)
    sigma = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / np.sqrt(2.0)
    return max(sigma, float(floor))


def plant_targets(frame: np.ndarray, seed: int | np.random.SeedSequence | np.random.Generator, n: int, *,
                  snr: tuple[float, float] = (8.0, 80.0), sigma: tuple[float, float] = (0.4, 1.4),
                  avoid: np.ndarray | None = None, spacing: int = 12, border: int = 3,
                  ) -> tuple[np.ndarray, np.ndarray, list[Planted]]:
    """Plant up to ``n`` dim blobs into a copy of the (H, W) ``frame``.

    Returns the planted frame (in the frame's units and integer type, else float32), a bool (H, W) mask of the blobs (pixels at
    ≥ 1/4 of their blob's peak; always the peak pixel) and the :class:`Planted` list. SNR is drawn
    log-uniformly from ``snr``, the sigmas uniformly from ``sigma``; centres keep ``border`` px from the
    edge, ``spacing`` px from each other and from every pixel of ``avoid`` (e.g. the real targets' mask).
    Fewer than ``n`` are planted when no free place is found in 20·n draws.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    src = np.asarray(frame)
    base = src.astype(np.float32)
    out = base.copy()
    h, w = out.shape
    mask = np.zeros((h, w), bool)
    lo, hi = np.percentile(out, [1, 99])
    floor = max(float(hi - lo) / 256.0, 1e-6)
    blocked = np.zeros((h, w), bool) if avoid is None else np.asarray(avoid, bool).copy()
    placed: list[Planted] = []
    yy, xx = np.mgrid[-_HALF : _HALF + 1, -_HALF : _HALF + 1]  # (9, 9) offsets of the drawing window
    for _ in range(20 * n):
        if len(placed) == n or h <= 2 * border or w <= 2 * border:
            break
        x = float(rng.uniform(border, w - 1 - border))
        y = float(rng.uniform(border, h - 1 - border))
        r, c = int(np.floor(y + 0.5)), int(np.floor(x + 0.5))
        r0, r1, c0, c1 = max(r - spacing, 0), min(r + spacing + 1, h), max(c - spacing, 0), min(c + spacing + 1, w)
        if blocked[r0:r1, c0:c1].any():
            continue
        s = float(np.exp(rng.uniform(np.log(snr[0]), np.log(snr[1]))))
        sx, sy = (float(v) for v in rng.uniform(sigma[0], sigma[1], 2))
        amp = s * local_noise(base, r, c, floor=floor)  # the frame's own noise, not earlier blobs'
        # the blob on the window around the centre pixel, offset by the sub-pixel part of the centre
        g = np.exp(-0.5 * (((xx - (x - c)) / sx) ** 2 + ((yy - (y - r)) / sy) ** 2))  # (9, 9)
        g /= g.max()
        wr0, wr1 = max(r - _HALF, 0), min(r + _HALF + 1, h)
        wc0, wc1 = max(c - _HALF, 0), min(c + _HALF + 1, w)
        gw = g[wr0 - r + _HALF : wr1 - r + _HALF, wc0 - c + _HALF : wc1 - c + _HALF]
        out[wr0:wr1, wc0:wc1] += amp * gw
        mask[wr0:wr1, wc0:wc1] |= gw >= 0.25
        mask[r, c] = True
        blocked[r, c] = True
        placed.append(Planted(x, y, float(amp), s, (sx, sy)))
    if np.issubdtype(src.dtype, np.integer):
        info = np.iinfo(src.dtype)
        out = np.clip(np.round(out), info.min, info.max).astype(src.dtype)
    elif out.size and src.min() >= 0 and src.max() <= 65535:  # a float frame in 8- or 16-bit sensor units
        out = np.clip(out, 0.0, 255.0 if src.max() <= 255 else 65535.0)
        if np.array_equal(src, np.round(src)):  # integer-valued: a decoded image, quantised again
            out = np.round(out)
    return out, mask, placed
