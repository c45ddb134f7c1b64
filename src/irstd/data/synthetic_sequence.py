"""Generated frame sequences for tracking tests: moving targets, static and flickering clutter, a camera pan
and a scene cut, with the truth per frame.

A clip is a view (``size``) cropped from a larger scene (a smooth fractal sky of
:func:`~irstd.data.synthetic.fractal_noise`); the camera pans by whole pixels, so a scene point at ``s``
sits at ``s - camera`` in the frame. Targets move at constant velocity in the scene; static clutter blobs
stay put in the scene; flickering clutter shows at fixed scene spots in random frames. After the cut a
new scene begins (new targets with new ids, new clutter) and the camera stands still. With a zoom or a
rotation in the first clip, its frames are resampled from the scene (bilinear) about the view's centre.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..core.errors import ConfigError
from .synthetic import fractal_noise


def _zoom_of(i: int, zoom: float, zoom_step: tuple[int, float] | None) -> float:
    """The view's magnification in frame ``i`` of the first clip."""
    return zoom ** i * (zoom_step[1] if zoom_step is not None and i >= zoom_step[0] else 1.0)


@dataclass
class SyntheticSequence:
    """Frames and their truth; every position is (x, y) in image pixels of its frame."""

    frames: list[np.ndarray]  # (H, W) float32, values near 0..255
    targets: list[np.ndarray]  # per frame (K, 3) id, x, y of the targets drawn in it
    hidden: list[np.ndarray]  # per frame (K, 3) id, x, y of targets present but not drawn (a missed frame)
    static: list[np.ndarray]  # per frame (S, 2) x, y of the static clutter in view
    flicker: list[np.ndarray]  # per frame (Q, 2) x, y of the flickering clutter shown
    camera: np.ndarray  # (F, 2) x, y of the view's corner in the scene
    cuts: list[int] = field(default_factory=list)  # frames that start a new scene (0 excluded)
    zoom: list[float] = field(default_factory=list)  # per frame: the view's magnification (1: as the scene)
    angle: list[float] = field(default_factory=list)  # per frame: the content's rotation in degrees


def _spot(img: np.ndarray, x: float, y: float, amplitude: float, sigma: float) -> None:
    """Add a Gaussian spot centred at sub-pixel (x, y), in place."""
    h, w = img.shape
    r = int(np.ceil(3 * sigma)) + 1
    x0, x1 = max(int(x) - r, 0), min(int(x) + r + 2, w)
    y0, y1 = max(int(y) - r, 0), min(int(y) + r + 2, h)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    img[y0:y1, x0:x1] += amplitude * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))


def generate_sequence(n_frames: int = 40, size: tuple[int, int] = (128, 160), n_targets: int = 2,
                      n_static: int = 6, n_flicker: int = 4, pan: tuple[int, int] = (3, 0),
                      cut_at: int | None = None, dropouts: tuple[tuple[int, int], ...] = (),
                      speed: tuple[float, float] = (1.5, 2.5), flicker_rate: float = 0.3,
                      noise: float = 1.5, amplitude: tuple[float, float] = (25, 40),
                      zoom: float = 1.0, rotation: float = 0.0, zoom_step: tuple[int, float] | None = None,
                      seed: int = 0) -> SyntheticSequence:
    """A sequence of ``n_frames`` frames of ``size`` (H, W).

    ``pan``: whole pixels per frame (x, y) the camera moves in the first clip; ``cut_at``: the frame that
    starts a second scene (static camera); ``dropouts``: (target id, frame) pairs where a target is not
    drawn (ids count from 1 in the order targets appear); ``speed``: range of the targets' speed in the
    scene (px/frame); ``flicker_rate``: chance a flickering spot shows in a frame; ``amplitude``: range of the
    targets' peak above the background (grey levels; clutter spots: 30-50). In the first clip only: ``zoom``,
    the view's magnification per frame (1.01: the content grows 1 % a frame), ``rotation``, the content's turn
    in degrees per frame (from +x towards +y, about the frame's centre), ``zoom_step`` (frame, factor), a magnification by ``factor`` from ``frame`` on (a zoom
    step between two frames). Every position stays in image pixels of its frame; ``camera`` is then the
    corner of an unzoomed view with the same centre.
    """
    if n_frames < 1 or (cut_at is not None and not 0 < cut_at < n_frames):
        raise ConfigError(f"need n_frames >= 1 and 0 < cut_at < n_frames, got {n_frames}, {cut_at}")
    rng = np.random.default_rng(seed)
    h, w = size
    bounds = [0] + ([cut_at] if cut_at else []) + [n_frames]
    hidden_at = set(dropouts)
    out = SyntheticSequence([], [], [], [], [], np.zeros((n_frames, 2)), [cut_at] if cut_at else [])
    next_id = 1
    for clip, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        step = np.asarray(pan if clip == 0 else (0, 0), dtype=np.float64)
        length = b - a
        view = clip == 0 and (zoom != 1.0 or rotation != 0.0 or zoom_step is not None)  # resampled frames
        zmin = min(_zoom_of(i, zoom, zoom_step) for i in range(length)) if view else 1.0
        extra = int(np.ceil(np.hypot(h, w) / 2 / zmin - min(h, w) / 2)) + 2 if view else 0
        margin = int(np.abs(step).max() * length) + 8 + extra
        sh, sw = h + 2 * margin, w + 2 * margin
        base = rng.uniform(60, 120)
        scene = (base + rng.uniform(6, 12) * fractal_noise(rng, (sh, sw), 3.2)).astype(np.float32)
        start = np.array([margin, margin], dtype=np.float64) - step * length / 2  # the view sweeps the middle
        start = np.clip(start, 0, [sw - w, sh - h])
        inner = np.array([w, h]) * 0.2
        static = start + rng.uniform(inner, np.array([w, h]) - inner, (n_static, 2)) + step * length / 2
        for x, y in static:
            _spot(scene, x, y, rng.uniform(30, 50), rng.uniform(0.9, 1.3))
        flick = start + rng.uniform(inner, np.array([w, h]) - inner, (n_flicker, 2)) + step * length / 2
        ids = np.arange(next_id, next_id + n_targets)
        next_id += n_targets
        # targets: chosen in image coordinates (so they stay in view), moving in the scene at >= speed[0]
        p0 = rng.uniform(np.array([w, h]) * 0.3, np.array([w, h]) * 0.7, (n_targets, 2))
        vel = np.zeros((n_targets, 2))
        for k in range(n_targets):
            while True:
                ang, sp = rng.uniform(0, 2 * np.pi), rng.uniform(*speed)
                v = sp * np.array([np.cos(ang), np.sin(ang)])
                if np.hypot(*(v - step)) * length < 0.5 * min(h, w):  # image motion stays in view
                    break
                if np.hypot(*step) < 1e-9:
                    v *= 0.5 * min(h, w) / (np.hypot(*v) * length + 1e-9)
                    break
            vel[k] = v
        amp = rng.uniform(*amplitude, n_targets)
        centre = np.array([(w - 1) / 2, (h - 1) / 2])
        s0 = p0 + np.floor(start)  # the targets' scene positions at frame 0 (the view path)
        for i in range(length):
            f = a + i
            cam = start + step * i
            out.camera[f] = cam
            z, th = (_zoom_of(i, zoom, zoom_step), -np.radians(rotation * i)) if view else (1.0, 0.0)
            out.zoom.append(z)
            out.angle.append(float(-np.degrees(th)))  # the content's turn, from +x towards +y
            if view:  # image p shows scene C + R(th) (p - c) / z, C = the scene point at the view's centre
                rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
                ctr = np.floor(start) + step * i + centre

                def to_image(p: np.ndarray, rot=rot, ctr=ctr, z=z) -> np.ndarray:
                    return centre + z * (np.asarray(p, dtype=np.float64).reshape(-1, 2) - ctr) @ rot

                yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
                pts = ctr + (np.column_stack([xx.ravel(), yy.ravel()]) - centre) @ rot.T / z  # (H*W, 2) x, y
                frame = ndimage.map_coordinates(scene, [pts[:, 1].reshape(h, w), pts[:, 0].reshape(h, w)],
                                                order=1, mode="nearest").astype(np.float32)
                pos = to_image(s0 + vel * i)
            else:
                frame = scene[int(cam[1]): int(cam[1]) + h, int(cam[0]): int(cam[0]) + w].copy()
                pos = p0 + (vel - step) * i  # image coordinates

                def to_image(p: np.ndarray, cam=cam) -> np.ndarray:
                    return np.asarray(p, dtype=np.float64).reshape(-1, 2) - cam
            shown, hid = [], []
            for k, tid in enumerate(ids):
                (hid if (int(tid), f) in hidden_at else shown).append((tid, *pos[k]))
            for tid, x, y in shown:
                _spot(frame, x, y, amp[tid - ids[0]], 0.8)
            on = rng.random(n_flicker) < flicker_rate
            fl = to_image(flick[on])
            fl = fl[(fl[:, 0] >= 0) & (fl[:, 0] < w) & (fl[:, 1] >= 0) & (fl[:, 1] < h)]
            for x, y in fl:
                _spot(frame, x, y, rng.uniform(30, 50), 1.0)
            frame += noise * rng.standard_normal(frame.shape).astype(np.float32)
            out.frames.append(frame)
            out.targets.append(np.array(shown, dtype=np.float64).reshape(-1, 3))
            out.hidden.append(np.array(hid, dtype=np.float64).reshape(-1, 3))
            st = to_image(static)
            out.static.append(st[(st[:, 0] >= 0) & (st[:, 0] < w) & (st[:, 1] >= 0) & (st[:, 1] < h)])
            out.flicker.append(fl)
    return out


def ideal_detections(seq: SyntheticSequence, jitter: float = 0.3, seed: int = 0) -> list[np.ndarray]:
    """What a perfect detector would report per frame: (N, 4) x, y, area, score of every drawn target,
    static and shown flickering spot, centroids jittered by ``jitter`` px (std), in a shuffled order."""
    rng = np.random.default_rng(seed)
    out = []
    for t, s, q in zip(seq.targets, seq.static, seq.flicker):
        pts = np.concatenate([t[:, 1:], s, q]) if len(t) else np.concatenate([np.zeros((0, 2)), s, q])
        pts = pts + jitter * rng.standard_normal(pts.shape)
        det = np.column_stack([pts, np.full(len(pts), 3.0), np.ones(len(pts))])
        out.append(det[rng.permutation(len(det))])
    return out
