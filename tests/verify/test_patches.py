"""Patch extraction at frame borders and corners is exact (mirror without repeating the edge), and the
per-patch normalisation ignores a frame's gain and offset."""

from __future__ import annotations

import numpy as np
import pytest

from irstd.verify.patches import centre_pixel, extract_patches, normalise_patches


def _mirror(k: int, n: int) -> int:
    """numpy's 'reflect': index -1 is 1, index n is n - 2 (the edge pixel is not repeated)."""
    while k < 0 or k > n - 1:
        k = -k if k < 0 else 2 * (n - 1) - k
    return k


def _expected(frame: np.ndarray, x: float, y: float, size: int) -> np.ndarray:
    h, w = frame.shape
    r, c = centre_pixel(x, y)
    rows = [_mirror(r - size // 2 + i, h) for i in range(size)]
    cols = [_mirror(c - size // 2 + j, w) for j in range(size)]
    return frame[np.ix_(rows, cols)]


@pytest.mark.parametrize("x, y", [(0, 0), (9, 0), (0, 6), (9, 6), (4.4, 3.5), (0.49, 6.2), (9.0, 2.0)])
def test_patches_at_borders_and_corners_are_exact(x: float, y: float) -> None:
    frame = np.arange(7 * 10, dtype=np.float32).reshape(7, 10)  # every pixel its own value
    got = extract_patches(frame, [(x, y)], size=8)
    assert got.shape == (1, 8, 8)
    np.testing.assert_array_equal(got[0], _expected(frame, x, y, 8))


def test_corner_patch_by_hand() -> None:
    frame = np.arange(5 * 5, dtype=np.float32).reshape(5, 5)
    p = extract_patches(frame, [(0.0, 0.0)], size=4)[0]  # rows -2..1, cols -2..1 → mirrored 2,1,0,1
    np.testing.assert_array_equal(p, frame[np.ix_([2, 1, 0, 1], [2, 1, 0, 1])])
    assert p[2, 2] == frame[0, 0]  # the candidate's pixel sits at index size // 2


def test_patch_larger_than_frame_and_rounding() -> None:
    frame = np.arange(3 * 4, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(extract_patches(frame, [(1.5, 1.49)], size=10)[0], _expected(frame, 1.5, 1.49, 10))
    assert centre_pixel(1.5, 1.49) == (1, 2)  # halves round up
    assert extract_patches(frame, [], size=4).shape == (0, 4, 4)


def test_normalisation_ignores_gain_and_offset() -> None:
    rng = np.random.default_rng(0)
    p = rng.normal(100, 3, (2, 16, 16)).astype(np.float32)
    p[:, 8, 8] += 40
    a, b = normalise_patches(p), normalise_patches(p * 257.0 + 1000.0)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert np.isfinite(normalise_patches(np.zeros((1, 4, 4), np.float32))).all()  # a flat patch: no division by 0


def test_apply_verifier_removes_the_rejected_component_whatever_the_order() -> None:
    from irstd.inference import extract_targets
    from irstd.inference.verifier_protocol import apply_verifier

    mask = np.zeros((10, 12), bool)
    mask[1:3, 1:3] = True  # component A (4 px)
    mask[6, 8:11] = True  # component B (3 px)
    targets = extract_targets(mask.astype(np.float32), mask)[::-1]  # B first: windows give any order

    class KeepBig:
        def keep(self, frame, ts):
            return np.asarray([t.area == 4 for t in ts])

    kept_mask, kept = apply_verifier(KeepBig(), np.zeros((10, 12)), mask, targets)
    assert [t.area for t in kept] == [4]
    expected = np.zeros_like(mask)
    expected[1:3, 1:3] = True
    np.testing.assert_array_equal(kept_mask, expected)
