"""Global camera motion between consecutive frames (phase correlation) and scene cuts.

The shift is measured on a block-averaged copy of each frame (``downsample``× smaller per side), so one
estimate costs two small FFTs. A shift ``(dy, dx)`` means the scene content moved by that much: a scene
point at ``p`` in the previous frame lies at ``p + (dx, dy)`` in this one. With a camera model beyond the
shift (``similarity``, ``affine``: :mod:`.camera`), a point at ``p`` lies at ``A (p - c) + c + (dx, dy)``,
``c`` the frame's centre: ``(dx, dy)`` is then the centre's shift.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..core.errors import ConfigError
from .camera import MODELS, block_grid, block_shifts, block_spectra, fit_transform, parabolic_offset

if TYPE_CHECKING:
    from .params import TrackerParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MotionEstimate:
    """The global motion of one frame against the previous one."""

    dx: float  # px (full resolution), content moved right by dx
    dy: float  # px, content moved down by dy
    peak: float  # height of the normalised phase-correlation peak, in (0, 1]: ~0 unrelated, 1 identical
    correlation: float  # Pearson correlation of the two frames once aligned (overlap only), in [-1, 1]
    cut: bool  # a scene cut: the frames show different scenes
    linear: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 1.0)  # A row-major (a11, a12, a21, a22) on (x, y)
    cx: float = 0.0  # the centre c of the linear part, full-resolution px (the frame's centre)
    cy: float = 0.0

    @property
    def is_shift(self) -> bool:
        """The motion is a pure shift (the translation model, a cut, or no estimate beyond it)."""
        return self.linear == (1.0, 0.0, 0.0, 1.0)

    @property
    def scale(self) -> float:
        """Zoom factor of the linear part (sqrt of its determinant; > 1: the content grew)."""
        a, b, c, d = self.linear
        return float(np.sqrt(abs(a * d - b * c)))

    @property
    def angle(self) -> float:
        """Rotation of the linear part in degrees (positive: from +x towards +y, clockwise on screen)."""
        a, _, c, _ = self.linear
        return float(np.degrees(np.arctan2(c, a)))

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Where points (N, 2) x, y of the previous frame lie in this one, (N, 2)."""
        p = np.asarray(points, dtype=np.float64)
        if self.is_shift:
            return p + (self.dx, self.dy)
        a = np.asarray(self.linear, dtype=np.float64).reshape(2, 2)
        c = np.array([self.cx, self.cy])
        return (p - c) @ a.T + c + (self.dx, self.dy)


def _downsample(frame: np.ndarray, factor: int) -> np.ndarray:
    """Block mean of a (H, W) frame over factor×factor blocks (edges cropped), float32 (H//f, W//f)."""
    f = np.asarray(frame, dtype=np.float32)
    if f.ndim == 3:  # (H, W, C) colour or grey stored as RGB: its mean
        f = f.mean(axis=2)
    h, w = (f.shape[0] // factor) * factor, (f.shape[1] // factor) * factor
    return f[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


class GlobalMotion:
    """Frame-to-frame shift by phase correlation, with a scene-cut test; optionally zoom, rotation, shear.

    Args:
        downsample: block size of the averaging before the FFT (4: 640×512 → 160×128); smaller for
            small frames, so that the averaged frame keeps at least 64 px on its shorter side.
        cut_ratio: a frame pair whose phase-correlation peak falls below this fraction of the median
            peak of the clip so far (its last 8 frames; 0.5 assumed before any) is a cut. The peak's level
            depends on noise and texture, its collapse does not: on seq4 of ISTD-sequences the peak stays
            above 0.1 in every frame inside a clip (0.88–0.97 in sampled frames, pans of up to 7.5 px/frame
            included) and falls to 0.08–0.10 at its four clip boundaries. The aligned Pearson correlation is reported but not used: sky on both sides
            of a cut keeps it above 0.8.
        max_shift: largest believable shift in px per frame; a larger one is treated as a cut.
        model: ``translation`` (the shift only, the estimator's default), ``similarity`` (shift, zoom and
            rotation) or ``affine`` (also shear and unequal zoom: a pan seen in perspective, to first
            order). Beyond the shift, local shifts are measured in ``block``×``block`` blocks of the
            averaged pair at the global shift, ``stride`` apart (0: ``3 * block // 4``), and a transform
            is fitted to them (:mod:`.camera`). Blocks whose correlation peak is below ``min_peak`` are
            left out. The estimate falls back to the shift with fewer than ``min_blocks`` blocks left, a
            fit with a zoom or shear beyond ``max_zoom`` (a factor) or a rotation beyond ``max_angle``
            degrees, less than ``min_inliers`` of the peaks' weight within one averaged pixel of the fit
            (a missed cut), or a fit whose linear part moves no frame corner by ``min_warp`` px (a fit
            that small is as likely noise as a zoom; judged on the first of two passes, so such a frame
            costs one pass).
    """

    def __init__(self, downsample: int = 4, cut_ratio: float = 0.3, max_shift: float = 64.0,
                 model: str = "translation", block: int = 32, min_peak: float = 0.1, min_blocks: int = 8,
                 max_zoom: float = 1.25, max_angle: float = 10.0, stride: int = 0, min_warp: float = 0.0,
                 min_inliers: float = 0.5) -> None:
        if downsample < 1:
            raise ConfigError(f"downsample must be >= 1, got {downsample}")
        if model not in MODELS:
            raise ConfigError(f"camera model must be one of {', '.join(MODELS)}, got {model!r}")
        self.model = model
        self.block, self.min_peak, self.min_blocks = block, min_peak, min_blocks
        self.max_zoom, self.max_angle, self.stride, self.min_warp = max_zoom, max_angle, stride, min_warp
        self.min_inliers = min_inliers
        self.downsample = downsample
        self.cut_ratio = cut_ratio
        self._peaks: list[float] = []
        self.max_shift = max_shift
        self._prev: np.ndarray | None = None
        self._prev_fine: np.ndarray | None = None  # the last frame averaged for the block fit (beyond the shift)
        self._shape: tuple[int, int] | None = None  # of the last (downsampled) frame, seen or replayed
        self._prev_spec: np.ndarray | None = None
        self._window: np.ndarray | None = None

    @classmethod
    def for_params(cls, params: TrackerParams) -> GlobalMotion:
        """The estimator a tracker with ``params`` uses (its downsample, cut test and camera model)."""
        return cls(params.downsample, params.cut_ratio, params.max_shift, model=params.camera,
                   min_warp=params.min_warp)

    def reset(self) -> None:
        self._prev = self._prev_spec = self._shape = self._prev_fine = None
        self._peaks = []

    def _lowcut(self, shape: tuple[int, int]) -> np.ndarray:
        """Weights on the rfft2 grid: 0 below 3 cycles per frame, a Gaussian taper towards Nyquist."""
        if getattr(self, "_cut_mask", None) is None or self._cut_mask.shape != (shape[0], shape[1] // 2 + 1):
            fy = np.fft.fftfreq(shape[0])[:, None] * shape[0]
            fx = np.fft.rfftfreq(shape[1])[None, :] * shape[1]
            f = np.hypot(np.fft.fftfreq(shape[0])[:, None], np.fft.rfftfreq(shape[1])[None, :])  # cycles/px
            # a Gaussian taper (std 0.15 cycles/px) keeps noise-dominated frequencies from splitting the peak
            self._cut_mask = ((np.hypot(fy, fx) >= 3) * np.exp(-0.5 * (f / 0.15) ** 2)).astype(np.float32)
        return self._cut_mask

    def _spectrum(self, small: np.ndarray) -> np.ndarray:
        if self._window is None or self._window.shape != small.shape:
            self._window = np.outer(np.hanning(small.shape[0]), np.hanning(small.shape[1])).astype(np.float32)
        return np.fft.rfft2((small - small.mean()) * self._window)

    def _factor(self, shape: tuple[int, ...]) -> int:
        return max(1, min(self.downsample, min(shape[:2]) // 64))

    def replay(self, shape: tuple[int, int], estimate: MotionEstimate) -> None:
        """Account for an estimate made earlier for a frame of ``shape`` (H, W) without its pixels: the
        clip's recent peaks (the cut test's reference) change as :meth:`update` changed them. With
        :meth:`prime` on the last frame, a resumed stream then estimates exactly as an unbroken one."""
        f = self._factor(shape)
        small = (shape[0] // f, shape[1] // f)
        if self._shape != small or estimate.cut:  # a first frame, a new size, a cut: the clip starts afresh
            self._peaks = []
        else:
            self._peaks = (self._peaks + [estimate.peak])[-8:]
        self._shape = small

    def prime(self, frame: np.ndarray) -> None:
        """Take ``frame`` as the previous frame without estimating anything (after :meth:`replay`)."""
        small = _downsample(frame, self._factor(np.shape(frame)))
        self._prev, self._prev_spec, self._shape = small, self._spectrum(small), small.shape
        self._prev_fine = self._fine(frame, small)

    def update(self, frame: np.ndarray) -> MotionEstimate:
        """The motion from the previous frame to ``frame`` (the first frame, or a new size: zero, no cut)."""
        factor = self._factor(np.shape(frame))
        small = _downsample(frame, factor)
        self._shape = small.shape
        spec = self._spectrum(small)
        prev, prev_spec, prev_fine = self._prev, self._prev_spec, self._prev_fine
        fine = self._fine(frame, small)
        self._prev, self._prev_spec, self._prev_fine = small, spec, fine
        if prev is None or prev.shape != small.shape:
            self._peaks = []
            return MotionEstimate(0.0, 0.0, 1.0, 1.0, False)
        cross = spec * np.conj(prev_spec)
        cross /= np.abs(cross) + 1e-9
        cross *= self._lowcut(small.shape)  # the window's own frame-fixed structure would pull towards 0
        r = np.fft.irfft2(cross, s=small.shape)  # (h, w): peak at the shift of this frame against prev
        h, w = r.shape
        iy, ix = np.unravel_index(int(np.argmax(r)), r.shape)
        peak = float(r[iy, ix]) / float(np.fft.irfft2(self._lowcut(small.shape), s=small.shape)[0, 0])  # 1: identical
        fy = float(parabolic_offset(r[(iy - 1) % h, ix], r[iy, ix], r[(iy + 1) % h, ix]))
        fx = float(parabolic_offset(r[iy, (ix - 1) % w], r[iy, ix], r[iy, (ix + 1) % w]))
        sy = (iy + fy + h / 2) % h - h / 2  # wrap to [-h/2, h/2)
        sx = (ix + fx + w / 2) % w - w / 2
        corr = _aligned_correlation(prev, small, int(round(sy)), int(round(sx)))
        dy, dx = sy * factor, sx * factor
        ref = float(np.median(self._peaks)) if self._peaks else 0.5
        cut = peak < self.cut_ratio * ref or max(abs(dy), abs(dx)) > self.max_shift
        self._peaks = [] if cut else (self._peaks + [peak])[-8:]
        if cut:
            log.debug("scene cut: peak %.3f, correlation %.3f, shift (%.1f, %.1f)", peak, corr, dx, dy)
        elif fine is not None and prev_fine is not None and prev_fine.shape == fine.shape:
            fine_f = self._fine_factor(np.shape(frame))
            full = self._transform(prev_fine, fine, fine_f, (int(round(dy / fine_f)), int(round(dx / fine_f))),
                                   np.shape(frame))
            if full is not None:
                a, (dx, dy) = full
                h0, w0 = np.shape(frame)[:2]
                return MotionEstimate(float(dx), float(dy), peak, corr, False, tuple(float(v) for v in a.ravel()),
                                      (w0 - 1) / 2, (h0 - 1) / 2)
        return MotionEstimate(float(dx), float(dy), peak, corr, bool(cut))

    def _fine_factor(self, shape: tuple[int, ...]) -> int:
        """Averaging of the block fit: as the shift's, but keeping ≥ 128 px on the shorter side (enough blocks)."""
        return max(1, min(self.downsample, min(shape[:2]) // 128))

    def _fine(self, frame: np.ndarray, small: np.ndarray) -> np.ndarray | None:
        """The frame averaged for the block fit (None with the translation model)."""
        if self.model == "translation":
            return None
        f = self._fine_factor(np.shape(frame))
        return small if f == self._factor(np.shape(frame)) else _downsample(frame, f)

    def _transform(self, prev: np.ndarray, small: np.ndarray, factor: int, offset: tuple[int, int],
                   shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray] | None:
        """The similarity or affine transform (A (2, 2), d (2,)) about the full frame's centre, full px; None:
        keep the shift (too few textured blocks, or an unbelievable fit)."""
        block = min(self.block, max(8, min(small.shape) // 4))  # 32 (640×512: 160×128 after averaging)
        tops = block_grid(small.shape, block, self.stride or 3 * block // 4)
        centre = np.array([(shape[1] - 1) / 2, (shape[0] - 1) / 2])
        fit = None
        offsets = np.broadcast_to(np.asarray(offset, dtype=np.int64), tops.shape)
        spectra = block_spectra(prev, tops, block)
        last: np.ndarray | None = None
        for k in range(2):  # the second pass compares each block at the first fit's prediction: closer, sharper
            if last is not None and np.array_equal(offsets, last):
                break  # the same comparisons again: the same fit
            last = offsets
            src, shift, peaks = block_shifts(prev, small, tops, offsets, block, spectra)
            keep = peaks >= self.min_peak
            if keep.sum() < self.min_blocks:
                return None
            src, shift, peaks = src[keep], shift[keep], peaks[keep]
            full_src, full_dst = (src + 0.5) * factor - 0.5, (src + shift + 0.5) * factor - 0.5  # full px
            fit = fit_transform(full_src, full_dst, peaks, centre, self.model, min_scale=0.25 * factor)
            if fit is None:
                return None
            a, d, _ = fit
            if not k and self._warp(a, centre, shape) < self.min_warp:
                return None  # too small to be told from noise: the shift alone (no second pass)
            tl = (tops[:, ::-1] + (block - 1) / 2 + 0.5) * factor - 0.5  # every block's centre, full px (x, y)
            pred = ((tl - centre) @ a.T + centre + d - tl) / factor  # its predicted shift, averaged px
            offsets = np.rint(pred[:, ::-1]).astype(np.int64)
        a, d, _ = fit
        res = np.hypot(*((full_src - centre) @ a.T + centre + d - full_dst).T)
        agree = float(peaks[res <= factor].sum() / peaks.sum())  # within one averaged pixel of the fit
        if agree < self.min_inliers:  # the blocks disagree: a missed cut, a scene too changed
            log.debug("camera fit refused: %.2f of the blocks' weight agrees", agree)
            return None
        sv = np.linalg.svd(a, compute_uv=False)  # zoom along the principal axes
        angle = np.degrees(np.arctan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1]))
        if sv.max() > self.max_zoom or sv.min() < 1 / self.max_zoom or abs(angle) > self.max_angle:
            log.debug("camera fit refused: zoom %s, angle %.1f", sv, angle)
            return None
        if self._warp(a, centre, shape) < self.min_warp:
            return None
        return a, d

    @staticmethod
    def _warp(a: np.ndarray, centre: np.ndarray, shape: tuple[int, ...]) -> float:
        """How far (px) the linear part ``a`` about ``centre`` moves the farthest corner of a (H, W) frame."""
        corners = np.array([[0.0, 0.0], [shape[1] - 1, 0.0], [0.0, shape[0] - 1], [shape[1] - 1, shape[0] - 1]])
        return float(np.abs((corners - centre) @ (a - np.eye(2)).T).max())


def _aligned_correlation(a: np.ndarray, b: np.ndarray, sy: int, sx: int) -> float:
    """Pearson correlation of ``a`` shifted by (sy, sx) against ``b`` on their overlap."""
    h, w = a.shape
    if abs(sy) >= h // 2 or abs(sx) >= w // 2:
        return 0.0
    av = a[max(0, -sy): h - max(0, sy), max(0, -sx): w - max(0, sx)]
    bv = b[max(0, sy): h - max(0, -sy), max(0, sx): w - max(0, -sx)]
    av, bv = av - av.mean(), bv - bv.mean()
    den = float(np.sqrt((av * av).sum() * (bv * bv).sum()))
    return float((av * bv).sum() / den) if den > 0 else 1.0
