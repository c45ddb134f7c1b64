"""Synthetic infrared scenes with small targets: the embedded default dataset.

One scene (256×256 by default, NUDT-SIRST-like) is built in grey levels of an 8-bit sensor:

1. a background of one kind — ``sky`` (smooth gradient, faint structure), ``cloud`` (fractal cloud
   masses with sharp bright edges), ``sea`` (horizon, horizontally stretched waves, elongated sun
   glints) or ``ground`` (rough fractal texture, fields and buildings with straight edges, roads,
   optionally a treeline horizon) — all from FFT-filtered (1/f^β) noise, numpy only;
2. lens vignetting and sensor noise (white Gaussian plus column/row fixed-pattern noise);
3. bright **clutter** that is not a target: large blobs (≥ 150 px) and long thin streaks
   (aspect ≥ 4), as bright as the targets, so that a model must use size and shape to reject them;
4. 1–5 **targets** of 1–80 px: Gaussian point-spread spots or extended flat-topped blobs. The mask
   of a target is exactly its ``area`` brightest pixels; its amplitude is set so that the
   signal-to-clutter ratio ``SCR = (mean(target) − mean(local bg)) / std(local bg)`` matches a value
   drawn from ``scr``; the local background is a square around the target reaching at least 8 px
   beyond it (31×31 at least). ``info`` also gives the SCR measured on the final frame.

Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed gives identical arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["BACKGROUNDS", "generate_scene", "fractal_noise"]

BACKGROUNDS = ("sky", "cloud", "sea", "ground")
_WIN = 15  # half-size of the local window for SCR statistics (31×31)
_CLUTTER_AREA = 150  # clutter blobs are at least this large (targets ≤ 80 px by default)

Range = tuple[float, float]


def _as_range(v: float | Sequence[float], name: str) -> Range:
    lo, hi = (float(v), float(v)) if isinstance(v, (int, float)) else (float(v[0]), float(v[1]))
    if lo > hi or lo < 0:
        raise ValueError(f"{name} must be a number or (low, high) with 0 <= low <= high, got {v}")
    return lo, hi


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    if hi <= lo:
        return float(hi)
    if lo <= 0:  # log-uniform needs lo > 0
        return float(rng.uniform(lo, hi))
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


@lru_cache(maxsize=16)
def _radial_freq(h: int, w: int, sy: float, sx: float) -> np.ndarray:
    """|f| on the rfft2 grid, axes scaled by (sy, sx) to stretch structures; DC set to inf."""
    fy = np.fft.fftfreq(h)[:, None] * sy
    fx = np.fft.rfftfreq(w)[None, :] * sx
    f = np.sqrt(fy * fy + fx * fx)
    f[0, 0] = np.inf
    return f.astype(np.float32)


def fractal_noise(rng: np.random.Generator, shape: tuple[int, int], beta: float,
                  stretch: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Zero-mean, unit-std noise with power spectrum ∝ 1/f^β (β≈2 rough, β≈3 smooth), float32 (H, W).

    ``stretch`` = (sy, sx) scales the frequency axes: sx > 1 damps horizontal frequencies, so
    structures get elongated horizontally (waves).
    """
    h, w = shape
    spec = np.fft.rfft2(rng.standard_normal(shape, dtype=np.float32))
    spec *= _radial_freq(h, w, float(stretch[0]), float(stretch[1])) ** np.float32(-beta / 2)
    out = np.fft.irfft2(spec, s=shape).astype(np.float32)
    out -= out.mean()
    return out / max(float(out.std()), 1e-8)


def _profile_1d(rng: np.random.Generator, n: int, beta: float) -> np.ndarray:
    """A 1-D fractal curve of length n, zero mean, unit std (hills, treelines, wave fronts)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = np.inf
    out = np.fft.irfft(spec * f ** (-beta / 2), n=n)
    return (out - out.mean()) / max(out.std(), 1e-8)


# ----------------------------------------------------------------------------- backgrounds


def _gradient(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, strength: float) -> np.ndarray:
    angle = rng.uniform(0, 2 * math.pi)
    return strength * (np.cos(angle) * xx + np.sin(angle) * yy)


def _sky(rng, shape, yy, xx) -> np.ndarray:
    base = rng.uniform(50, 140)
    img = base + 25 * rng.uniform(-1, 1) * yy + _gradient(rng, yy, xx, rng.uniform(0, 15))
    return img + rng.uniform(1.5, 6) * fractal_noise(rng, shape, rng.uniform(3.0, 3.6))


def _cloud(rng, shape, yy, xx) -> np.ndarray:
    sky = _sky(rng, shape, yy, xx)
    field = fractal_noise(rng, shape, rng.uniform(3.0, 3.6))
    field += 0.25 * fractal_noise(rng, shape, 2.4)  # ragged rims
    thr, soft = rng.uniform(-0.4, 0.9), rng.uniform(0.2, 0.6)
    cover = np.clip((field - thr) / soft, 0, 1)
    cover = cover * cover * (3 - 2 * cover)  # smoothstep: soft interior, sharp-ish rims
    detail = fractal_noise(rng, shape, rng.uniform(1.9, 2.4))
    level = rng.uniform(20, 70) * (1 if rng.random() < 0.85 else -0.6)  # mostly warmer than clear sky
    return sky + cover * (level + rng.uniform(3, 10) * detail)


def _horizon(rng, shape, frac: tuple[float, float], rough: float) -> np.ndarray:
    """Bool (H, W): True above a (possibly tilted, rough) horizon line."""
    h, w = shape
    y0 = rng.uniform(*frac) * h
    slope = rng.uniform(-0.08, 0.08)
    x = np.arange(w)
    line = y0 + slope * (x - w / 2) + rough * _profile_1d(rng, w, 2.2)
    return np.arange(h)[:, None] < line[None, :]


def _sea(rng, shape, yy, xx) -> np.ndarray:
    h, w = shape
    waves = fractal_noise(rng, shape, rng.uniform(2.0, 2.6), stretch=(1.0, rng.uniform(3.0, 8.0)))
    sea = rng.uniform(45, 130) + rng.uniform(3, 12) * waves + rng.uniform(-20, 20) * yy
    if rng.random() < 0.75:  # a horizon with sky or clouds above
        above = _horizon(rng, shape, (0.1, 0.55), 0.0)
        sky = (_cloud if rng.random() < 0.4 else _sky)(rng, shape, yy, xx)
        return np.where(above, sky, sea)
    return sea


def _ground(rng, shape, yy, xx) -> np.ndarray:
    h, w = shape
    img = (rng.uniform(50, 140) + rng.uniform(6, 18) * fractal_noise(rng, shape, rng.uniform(2.8, 3.3))
           + rng.uniform(3, 10) * fractal_noise(rng, shape, rng.uniform(1.6, 2.1)))
    py, px = (yy + 1) * (h - 1) / 2, (xx + 1) * (w - 1) / 2  # pixel coordinates
    # fields / buildings: rotated rectangles with their own level (straight, strong edges)
    for _ in range(rng.integers(2, 9)):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        hh, hw = rng.uniform(5, 45), rng.uniform(5, 60)
        t = rng.uniform(0, math.pi)
        u = (px - cx) * math.cos(t) + (py - cy) * math.sin(t)
        v = -(px - cx) * math.sin(t) + (py - cy) * math.cos(t)
        img = img + rng.uniform(-25, 25) * ((np.abs(u) < hw) & (np.abs(v) < hh))
    # roads: long straight bands
    for _ in range(rng.integers(0, 3)):
        t = rng.uniform(0, math.pi)
        d = (px - w / 2) * math.cos(t) + (py - h / 2) * math.sin(t) - rng.uniform(-0.5, 0.5) * w
        img = img + rng.uniform(-20, 15) * (np.abs(d) < rng.uniform(1.0, 3.0))
    if rng.random() < 0.4:  # horizon with a rough treeline
        above = _horizon(rng, shape, (0.1, 0.45), rng.uniform(1, 6))
        img = np.where(above, _sky(rng, shape, yy, xx), img)
    return img


_BACKGROUND_FN = {"sky": _sky, "cloud": _cloud, "sea": _sea, "ground": _ground}
# (min, max) counts of clutter blobs and streaks per background kind
_CLUTTER_COUNTS = {"sky": ((0, 1), (0, 1)), "cloud": ((0, 2), (0, 2)), "sea": ((0, 1), (1, 6)),
                   "ground": ((1, 3), (0, 3))}


# ----------------------------------------------------------------------------- objects


def _window(img: np.ndarray, cy: int, cx: int, half: int) -> tuple[np.ndarray, int, int]:
    """The square neighbourhood of (cy, cx) clipped at the borders, and its top-left corner."""
    y0, x0 = max(cy - half, 0), max(cx - half, 0)
    return img[y0 : cy + half + 1, x0 : cx + half + 1], y0, x0


def _local_stats(img: np.ndarray, cy: int, cx: int, half: int = _WIN) -> tuple[float, float]:
    win, _, _ = _window(img, cy, cx, half)
    return float(win.mean()), float(win.std())


def _target_patch(rng: np.random.Generator, area: int, extended: bool) -> tuple[np.ndarray, np.ndarray]:
    """Intensity shape (peak ≈ 1) and footprint (exactly ``area`` pixels) on a square patch."""
    r0 = math.sqrt(area / math.pi)
    aspect = rng.uniform(1.0, 2.0 if extended else 1.5)
    wobble = rng.uniform(0.0, 0.2) if extended else 0.0
    if extended:
        sx, sy = r0 * math.sqrt(aspect), r0 / math.sqrt(aspect)
        half = int(math.ceil(1.6 * max(sx, sy) * (1 + wobble))) + 3
    else:
        sigma = max(0.45, r0 / 1.1774)  # half-maximum radius ≈ r0
        sx, sy = sigma * math.sqrt(aspect), sigma / math.sqrt(aspect)
        half = int(math.ceil(3.0 * max(sx, sy))) + 2
    half = max(half, int(math.ceil(math.sqrt(area))) + 2)
    g = np.arange(-half, half + 1, dtype=np.float32)
    dy, dx = g[:, None] - rng.uniform(-0.5, 0.5), g[None, :] - rng.uniform(-0.5, 0.5)  # sub-pixel centre
    t = rng.uniform(0, math.pi)
    a = (dx * math.cos(t) + dy * math.sin(t)) / sx
    b = (-dx * math.sin(t) + dy * math.cos(t)) / sy
    rho = np.sqrt(a * a + b * b)
    if wobble:
        rho = rho / (1 + wobble * np.cos(rng.integers(2, 5) * np.arctan2(b, a) + rng.uniform(0, 2 * math.pi)))
    prof = np.exp(-(rho ** rng.uniform(3.0, 5.0))) if extended else np.exp(-0.5 * rho * rho)
    order = np.argsort(prof, axis=None, kind="stable")[::-1]
    foot = np.zeros(prof.size, dtype=bool)
    foot[order[:area]] = True
    foot = foot.reshape(prof.shape)
    if extended:  # flat top with a slight dome, soft rim outside the footprint
        thr = float(prof.flat[order[area - 1]])
        shape = np.minimum(prof / max(thr, 1e-6), 1.0) * (0.8 + 0.2 * prof)
    else:
        shape = prof
    return shape.astype(np.float32), foot


def _clutter_patch(rng: np.random.Generator, kind: str, level: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Intensity (peak 1) and visible footprint of a non-target: a large blob or a long thin streak.

    ``level``: streaks lie almost horizontal (sun glints on water).
    """
    if kind == "blob":
        area = rng.uniform(_CLUTTER_AREA * 1.2, 700)
        aspect = rng.uniform(1.0, 3.0)
        r = math.sqrt(area / math.pi)
        sx, sy = r * math.sqrt(aspect), r / math.sqrt(aspect)
        half = int(math.ceil(1.5 * max(sx, sy))) + 2
        power = rng.uniform(2.0, 4.0)
    else:  # streak: length 12..40, width sigma 0.7..1.6 (aspect >= 4)
        length = rng.uniform(12, 40)
        sy = rng.uniform(0.7, 1.6)
        sx = length / 2
        half = int(math.ceil(sx + 3 * sy)) + 2
        power = rng.uniform(4.0, 8.0)
    g = np.arange(-half, half + 1, dtype=np.float32)
    t = rng.uniform(-0.12, 0.12) if kind == "streak" and level else rng.uniform(0, math.pi)
    dy, dx = g[:, None], g[None, :]
    a = (dx * math.cos(t) + dy * math.sin(t)) / sx
    b = (-dx * math.sin(t) + dy * math.cos(t)) / sy
    if kind == "blob":
        prof = np.exp(-((a * a + b * b) ** (power / 2)))
    else:  # Gaussian across, flat along with soft ends
        prof = np.exp(-0.5 * b * b) * np.exp(-(np.abs(a) ** power))
    return prof.astype(np.float32), prof >= 0.2


def _free(occupied: np.ndarray, cy: int, cx: int, half: int, pad: int) -> bool:
    r = half + pad
    return not occupied[max(cy - r, 0) : cy + r + 1, max(cx - r, 0) : cx + r + 1].any()


def _stamp(img: np.ndarray, patch: np.ndarray, cy: int, cx: int) -> tuple[slice, slice, np.ndarray]:
    """Add ``patch`` centred at (cy, cx), clipped at the borders; returns the image slices and patch view."""
    half = patch.shape[0] // 2
    h, w = img.shape
    y0, x0 = cy - half, cx - half
    ys = slice(max(y0, 0), min(y0 + patch.shape[0], h))
    xs = slice(max(x0, 0), min(x0 + patch.shape[1], w))
    view = patch[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    return ys, xs, view


# ----------------------------------------------------------------------------- the scene, part by part


@dataclass(frozen=True)
class _Settings:
    """The checked arguments of :func:`generate_scene` (every range inclusive)."""

    h: int
    w: int
    n_targets: tuple[int, int]
    area: tuple[int, int]
    scr: Range
    noise: Range
    kinds: tuple[str, ...]  # background kinds to draw from
    clutter: float
    bit_depth: int


def _int_range(v: int | Sequence[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _check_settings(size: int | tuple[int, int], n_targets: int | tuple[int, int], area: int | tuple[int, int],
                    scr: float | tuple[float, float], background: str | Sequence[str], clutter: float,
                    noise: float | tuple[float, float], bit_depth: int) -> _Settings:
    """Validate the arguments (ValueError naming the bad one) before any random draw."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    h, w = _int_range(size)
    if h < 16 or w < 16:
        raise ValueError(f"scene size must be at least 16x16, got {h}x{w}")
    (n_lo, n_hi), (a_lo, a_hi) = _int_range(n_targets), _int_range(area)
    if not 0 <= n_lo <= n_hi or not 1 <= a_lo <= a_hi:
        raise ValueError(f"bad ranges: n_targets={n_targets}, area={area}")
    if isinstance(background, str):
        kinds = BACKGROUNDS if background == "random" else (background,)
    else:
        kinds = tuple(background)
    for k in kinds:
        if k not in _BACKGROUND_FN:
            raise ValueError(f"unknown background {k!r}; choose from {', '.join(BACKGROUNDS)} or 'random'")
    return _Settings(h, w, (n_lo, n_hi), (a_lo, a_hi), _as_range(scr, "scr"), _as_range(noise, "noise"),
                     tuple(kinds), clutter, bit_depth)


def _sensor_background(rng: np.random.Generator, kind: str, s: _Settings) -> tuple[np.ndarray, float]:
    """Background of ``kind`` seen through the lens and the sensor: float32 (H, W) and the noise sigma.

    Vignetting darkens the corners; the noise is white Gaussian plus column and row fixed-pattern noise
    (one offset per column (1, W) and per row (H, 1), broadcast over the frame).
    """
    h, w = s.h, s.w
    yy = np.linspace(-1, 1, h, dtype=np.float32)[:, None]  # (H, 1) coordinates in [-1, 1]
    xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]  # (1, W)
    img = _BACKGROUND_FN[kind](rng, (h, w), yy, xx).astype(np.float32)
    img *= 1 - rng.uniform(0, 0.2) * (xx * xx + yy * yy) / 2  # vignetting
    sigma_n = rng.uniform(*s.noise)
    img += sigma_n * rng.standard_normal((h, w), dtype=np.float32)
    img += rng.uniform(0, 0.4) * sigma_n * (rng.standard_normal((1, w), dtype=np.float32)
                                            + rng.standard_normal((h, 1), dtype=np.float32))
    return img, sigma_n


def _add_clutter(rng: np.random.Generator, img: np.ndarray, kind: str, sigma_n: float,
                 s: _Settings) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Stamp non-target blobs and streaks into ``img`` (in place), as bright as targets.

    Returns their footprint, bool (H, W), and their description. The counts depend on the background
    kind (sun glints on the sea are many level streaks) and are scaled by ``s.clutter``.
    """
    clutter_mask = np.zeros((s.h, s.w), dtype=bool)
    clutter_info: list[dict[str, Any]] = []
    (b_lo, b_hi), (s_lo, s_hi) = _CLUTTER_COUNTS[kind]
    n_blob = int(round(rng.integers(b_lo, b_hi + 1) * s.clutter))
    n_streak = int(round(rng.integers(s_lo, s_hi + 1) * s.clutter))
    scr_lo, scr_hi = s.scr
    for ckind in ["blob"] * n_blob + ["streak"] * n_streak:
        prof, foot = _clutter_patch(rng, ckind, level=kind == "sea")
        cy, cx = int(rng.integers(0, s.h)), int(rng.integers(0, s.w))
        _, std_b = _local_stats(img, cy, cx)
        amp = _loguniform(rng, max(scr_lo, 1.0), max(scr_hi, 1.0)) * max(std_b, sigma_n) * rng.uniform(0.8, 1.5)
        ys, xs, view = _stamp(img, prof, cy, cx)
        img[ys, xs] += amp * view
        _, _, fview = _stamp(img, foot, cy, cx)
        clutter_mask[ys, xs] |= fview
        clutter_info.append({"kind": ckind, "center": (cy, cx), "area": int(fview.sum()), "amplitude": amp})
    return clutter_mask, clutter_info


def _free_spot(rng: np.random.Generator, occupied: np.ndarray, half: int) -> tuple[int, int] | None:
    """A centre whose patch (± ``half``) lies inside the frame, 2 px clear of ``occupied``; None after
    60 tries (the frame is too full)."""
    h, w = occupied.shape
    for _try in range(60):
        cy, cx = int(rng.integers(half, h - half)), int(rng.integers(half, w - half))
        if _free(occupied, cy, cx, half, 2):
            return cy, cx
    return None


def _add_targets(rng: np.random.Generator, img: np.ndarray, occupied: np.ndarray,
                 s: _Settings) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Stamp the targets into ``img`` (in place), away from clutter, borders and each other.

    Each amplitude gives the requested SCR against the local background as it is before the target.
    Returns the target mask, bool (H, W), and the targets placed (fewer than drawn when no room is
    left); each keeps its footprint under ``"_foot"`` for :func:`_measure_scr`. Marks ``occupied``.
    """
    (n_lo, n_hi), (a_lo, a_hi), (scr_lo, scr_hi) = s.n_targets, s.area, s.scr
    mask = np.zeros((s.h, s.w), dtype=bool)
    targets: list[dict[str, Any]] = []
    want = int(rng.integers(n_lo, n_hi + 1))
    for _ in range(want):
        t_area = int(round(_loguniform(rng, a_lo, a_hi))) if a_lo < a_hi else a_lo
        t_area = min(max(t_area, a_lo), a_hi)
        extended = t_area > 6 and rng.random() < 0.5
        shape, foot = _target_patch(rng, t_area, extended)
        half = shape.shape[0] // 2
        if 2 * half + 1 > min(s.h, s.w):
            continue
        spot = _free_spot(rng, occupied, half)
        if spot is None:
            continue  # no room: fewer targets (info lists those placed)
        cy, cx = spot
        _, std_b = _local_stats(img, cy, cx, max(_WIN, half + 8))
        want_scr = _loguniform(rng, scr_lo, scr_hi) if scr_hi > 0 else 0.0
        amp = want_scr * max(std_b, 1e-3) / float(shape[foot].mean())
        ys, xs, view = _stamp(img, shape, cy, cx)
        img[ys, xs] += amp * view
        _, _, fview = _stamp(img, foot, cy, cx)
        mask[ys, xs] |= fview
        occupied[ys, xs] = True
        # the centre reported is the brightest footprint pixel, in frame coordinates
        py, px = np.unravel_index(int(np.argmax(np.where(foot, shape, -1.0))), foot.shape)
        targets.append({"center": (cy + int(py) - half, cx + int(px) - half), "area": int(fview.sum()),
                        "shape": "extended" if extended else "point", "scr": want_scr, "amplitude": amp,
                        "bbox": (ys.start, xs.start, ys.stop, xs.stop), "_foot": (ys, xs, fview)})
    return mask, targets


def _to_sensor_range(img: np.ndarray, bit_depth: int) -> None:
    """Scale to the sensor's levels and saturate, in place: 0..255, or 0..65535 for 16 bits."""
    top = 255.0 if bit_depth == 8 else 65535.0
    if bit_depth == 16:
        img *= 257.0  # same scene on the 16-bit scale (finer quantisation, same SCR)
    np.clip(img, 0.0, top, out=img)


def _measure_scr(img: np.ndarray, targets: list[dict[str, Any]]) -> None:
    """Set each target's ``scr_measured`` on the final frame (after neighbours and saturation).

    The background is the target's window without its bounding box; pops the ``"_foot"`` entries.
    """
    for t in targets:
        ys, xs, fview = t.pop("_foot")
        cy, cx = (ys.start + ys.stop) // 2, (xs.start + xs.stop) // 2
        win, oy, ox = _window(img, cy, cx, max(_WIN, (ys.stop - ys.start) // 2 + 8))
        keep = np.ones(win.shape, dtype=bool)
        keep[max(ys.start - oy, 0) : ys.stop - oy, max(xs.start - ox, 0) : xs.stop - ox] = False
        bg = win[keep]
        t["scr_measured"] = float((img[ys, xs][fview].mean() - bg.mean()) / max(bg.std(), 1e-6))


def generate_scene(
    seed: int | Sequence[int] | np.random.SeedSequence = 0,
    size: int | tuple[int, int] = (256, 256),
    n_targets: int | tuple[int, int] = (1, 5),
    area: int | tuple[int, int] = (1, 80),
    scr: float | tuple[float, float] = (2.0, 12.0),
    background: str | Sequence[str] = "random",
    *,
    clutter: float = 1.0,
    noise: float | tuple[float, float] = (1.0, 3.5),
    bit_depth: int = 8,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """One synthetic infrared frame, its target mask and a description.

    Returns ``image`` float32 (H, W) in the sensor range (0..255, or 0..65535 for ``bit_depth=16``),
    ``mask`` bool (H, W) = union of the target footprints only, and ``info`` with ``background``,
    ``targets`` (centre = brightest footprint pixel, area, shape, requested and measured SCR, bbox),
    ``clutter`` (kind, centre, visible area) and ``clutter_mask`` (bool (H, W) of the clutter footprints).
    ``n_targets``, ``area`` (pixels, log-uniform) and ``scr`` (log-uniform) are inclusive ranges;
    ``clutter`` scales how many non-target blobs/streaks appear (0: none). Same seed, same output.
    """
    s = _check_settings(size, n_targets, area, scr, background, clutter, noise, bit_depth)
    # one generator, drawn from in a fixed order by the parts below: the same seed gives the same scene
    rng = np.random.default_rng(seed)
    kind = s.kinds[int(rng.integers(len(s.kinds)))]
    img, sigma_n = _sensor_background(rng, kind, s)
    clutter_mask, clutter_info = _add_clutter(rng, img, kind, sigma_n, s)
    mask, targets = _add_targets(rng, img, clutter_mask.copy(), s)
    _to_sensor_range(img, bit_depth)
    _measure_scr(img, targets)
    info = {"background": kind, "noise_sigma": sigma_n * (257.0 if bit_depth == 16 else 1.0), "targets": targets,
            "clutter": clutter_info, "clutter_mask": clutter_mask, "bit_depth": bit_depth}
    return img, mask, info
