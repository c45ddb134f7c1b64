"""Camera motion beyond a shift: a similarity or affine transform fitted to local shifts.

The frame pair (block-averaged, as :class:`~irstd.tracking.motion.GlobalMotion` has them) is cut into
overlapping blocks; each block of the previous frame is phase-correlated with the block of this frame at
the global shift, which gives the local shift at the block's centre. A zoom, a rotation or the
perspective of a pan makes those local shifts differ across the frame; a robust weighted least-squares
fit (Tukey biweight, weights the blocks' correlation peaks) turns them into ``p' = A (p - c) + c + d`` in
full-resolution pixels, ``c`` the frame's centre. Blocks of flat sky correlate weakly and count little;
blocks that disagree (a moving object, noise) are discounted by the robust fit.
"""

from __future__ import annotations

import numpy as np

#: camera models of :class:`~irstd.tracking.TrackerParams` ``camera``
MODELS = ("translation", "similarity", "affine")

_TAPERS: dict[tuple[int, int], tuple[np.ndarray, float]] = {}
_HANN: dict[int, np.ndarray] = {}


def _taper(b: int) -> tuple[np.ndarray, float]:
    """Weights on the (b, b//2+1) rfft2 grid (DC and 1 cycle per block cut, Gaussian taper towards Nyquist) and
    the correlation peak of two identical blocks under them (to normalise peaks to (0, 1])."""
    key = (b, b)
    if key not in _TAPERS:
        fy = np.fft.fftfreq(b)[:, None]
        fx = np.fft.rfftfreq(b)[None, :]
        f = np.hypot(fy, fx)  # cycles/px
        m = ((f * b >= 1.5) * np.exp(-0.5 * (f / 0.2) ** 2)).astype(np.float32)
        _TAPERS[key] = (m, float(np.fft.irfft2(m, s=(b, b))[0, 0]))
    return _TAPERS[key]


def _hann(b: int) -> np.ndarray:
    if b not in _HANN:
        _HANN[b] = np.outer(np.hanning(b), np.hanning(b)).astype(np.float32)
    return _HANN[b]


def parabolic_offset(c_m: np.ndarray, c_0: np.ndarray, c_p: np.ndarray) -> np.ndarray:
    """Sub-sample offsets of smooth (tapered) correlation peaks from three samples each, in [-0.5, 0.5]
    (any shape; 0 where the samples do not curve down)."""
    den = c_m - 2 * c_0 + c_p
    neg = den < 0
    return np.clip(np.where(neg, 0.5 * (c_m - c_p) / np.where(neg, den, -1.0), 0.0), -0.5, 0.5)


def block_grid(shape: tuple[int, int], block: int, stride: int) -> np.ndarray:
    """Top-left corners (K, 2) y, x of ``block``×``block`` blocks ``stride`` apart covering a (h, w) frame."""
    h, w = shape
    yy, xx = np.meshgrid(np.arange(0, h - block + 1, stride), np.arange(0, w - block + 1, stride), indexing="ij")
    return np.column_stack([yy.ravel(), xx.ravel()])


def block_spectra(img: np.ndarray, tops: np.ndarray, block: int) -> np.ndarray:
    """Spectra (K, b, b//2+1) of the mean-free, Hann-windowed ``block``×``block`` blocks of ``img`` at
    ``tops`` (K, 2) y, x (each inside the frame)."""
    tops = np.asarray(tops, dtype=np.int64).reshape(-1, 2)
    idx_y = tops[:, 0, None] + np.arange(block)[None, :]  # (K, b)
    idx_x = tops[:, 1, None] + np.arange(block)[None, :]
    a = img[idx_y[:, :, None], idx_x[:, None, :]]  # (K, b, b)
    return np.fft.rfft2((a - a.mean(axis=(1, 2), keepdims=True)) * _hann(block))


def block_shifts(prev: np.ndarray, cur: np.ndarray, tops: np.ndarray, offsets: np.ndarray,
                 block: int = 32, prev_spectra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local shifts of ``cur`` against ``prev`` (both (h, w), the same size) in blocks.

    ``tops`` (K, 2) y, x: the blocks' corners in ``prev``; ``offsets`` (K, 2) or (2,) oy, ox: whole pixels
    each block's content is expected to have moved; the block of ``cur`` that far away is compared (blocks
    that would leave the frame are skipped). Returns the kept blocks' centres in ``prev`` (K', 2) x, y, their
    shifts (K', 2) dx, dy (offset included) and correlation peaks (K',) in (0, 1]: ~0 unrelated (flat or
    changed), 1 identical. All in the pixels of ``prev``. ``prev_spectra``: :func:`block_spectra` of ``prev``
    at ``tops``, when already made.
    """
    h, w = prev.shape
    tops = np.asarray(tops, dtype=np.int64).reshape(-1, 2)
    off = np.broadcast_to(np.asarray(offsets, dtype=np.int64), tops.shape)
    moved = tops + off
    ok = (moved[:, 0] >= 0) & (moved[:, 0] <= h - block) & (moved[:, 1] >= 0) & (moved[:, 1] <= w - block)
    spec_a = block_spectra(prev, tops[ok], block) if prev_spectra is None else prev_spectra[ok]
    tops, off = tops[ok], off[ok]
    k = len(tops)
    if not k:
        return np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0)
    cross = block_spectra(cur, tops + off, block) * np.conj(spec_a)
    cross /= np.abs(cross) + 1e-9
    mask, norm = _taper(block)
    r = np.fft.irfft2(cross * mask, s=(block, block))  # (K, b, b): peak at each block's shift
    flat = r.reshape(k, -1).argmax(axis=1)
    iy, ix = np.divmod(flat, block)
    ar = np.arange(k)
    c0 = r[ar, iy, ix]
    fy = parabolic_offset(r[ar, (iy - 1) % block, ix], c0, r[ar, (iy + 1) % block, ix])
    fx = parabolic_offset(r[ar, iy, (ix - 1) % block], c0, r[ar, iy, (ix + 1) % block])
    sy = (iy + fy + block / 2) % block - block / 2 + off[:, 0]
    sx = (ix + fx + block / 2) % block - block / 2 + off[:, 1]
    centres = (tops[:, ::-1] + (block - 1) / 2).astype(np.float64)
    return centres, np.column_stack([sx, sy]).astype(np.float64), (c0 / norm).astype(np.float64)


def fit_transform(src: np.ndarray, dst: np.ndarray, weights: np.ndarray, centre: np.ndarray, model: str,
                  iterations: int = 4, min_scale: float = 0.25) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Robust fit of ``dst ≈ A (src - centre) + centre + d`` over point pairs (K, 2) x, y.

    ``model``: ``similarity`` (A = [[a, -b], [b, a]]: zoom and rotation) or ``affine`` (any A). Weighted
    least squares, reweighted by Tukey's biweight on the residuals (cut-off 4.685 × their robust scale, at
    least ``min_scale`` px). Returns (A (2, 2), d (2,), the final weights (K,)), or None when too few pairs
    carry weight or they do not span the frame (a degenerate fit).
    """
    u = src - centre
    y = dst - centre
    k = len(u)
    need = 3 if model == "similarity" else 4
    if k < need:
        return None
    one, zero = np.ones(k), np.zeros(k)
    if model == "similarity":  # unknowns a, b, dx, dy; rows: x equations then y equations
        m = np.concatenate([np.column_stack([u[:, 0], -u[:, 1], one, zero]),
                            np.column_stack([u[:, 1], u[:, 0], zero, one])])
    else:  # a11, a12, dx | a21, a22, dy (two independent 3-parameter fits, one design)
        m = np.column_stack([u[:, 0], u[:, 1], one])
    if np.linalg.cond(m) > 1e6:  # the pairs do not span the frame
        return None
    w = np.asarray(weights, dtype=np.float64).copy()
    live = w > 0
    yy = np.concatenate([y[:, 0], y[:, 1]]) if model == "similarity" else y
    for it in range(iterations + 1):
        if (w > 0).sum() < need:
            return None
        ww = np.concatenate([w, w]) if model == "similarity" else w
        mw = m * ww[:, None]
        try:
            sol = np.linalg.solve(mw.T @ m, mw.T @ yy)  # weighted normal equations (4 or 3 unknowns)
        except np.linalg.LinAlgError:
            return None
        if model == "similarity":
            a, b, dx, dy = sol
            A, d = np.array([[a, -b], [b, a]]), np.array([dx, dy])
        else:
            A, d = sol[:2].T, sol[2]
        res = np.hypot(*(u @ A.T + d - y).T)
        if it == iterations:
            break
        scale = max(1.4826 * float(np.median(res[live])), min_scale)
        t = np.minimum(res / (4.685 * scale), 1.0)
        w = weights * (1 - t * t) ** 2
    return A, d, w
