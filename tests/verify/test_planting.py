"""Planted dim targets (the verifier's positives in real clutter) and their labelling against a detector."""

from __future__ import annotations

import numpy as np

from irstd.inference import Target
from irstd.verify.mining import examples_of_planted
from irstd.verify.patches import extract_patches
from irstd.verify.planting import local_noise, plant_targets
from irstd.verify.training import _epoch_indices


def _frame(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.round(100 + rng.normal(0, 2.0, (96, 128))).astype(np.float32)  # integer-valued, noise sigma 2


def test_planting_is_deterministic_and_leaves_the_rest_alone() -> None:
    frame = _frame()
    a, ma, pa = plant_targets(frame, 7, 5)
    b, mb, pb = plant_targets(frame, 7, 5)
    assert np.array_equal(a, b) and np.array_equal(ma, mb) and pa == pb
    assert len(pa) == 5
    c, _, _ = plant_targets(frame, 8, 5)
    assert not np.array_equal(a, c)
    changed = a != frame
    near = np.zeros_like(changed)
    for p in pa:  # every changed pixel lies in the 9×9 drawing window of a blob
        r, c0 = int(np.floor(p.y + 0.5)), int(np.floor(p.x + 0.5))
        near[max(r - 4, 0) : r + 5, max(c0 - 4, 0) : c0 + 5] = True
    assert not np.any(changed & ~near)
    assert np.array_equal(a, np.round(a))  # an integer-valued frame stays integer-valued
    assert np.array_equal(frame, _frame())  # the input is not modified


def test_blob_sits_where_it_says_with_the_stated_amplitude() -> None:
    frame = (100 + np.random.default_rng(2).normal(0, 2.0, (64, 64))).astype(np.float32)  # float, not integral
    out, mask, planted = plant_targets(frame, 3, 4, snr=(20.0, 30.0), sigma=(0.5, 0.8))
    assert len(planted) == 4
    diff = out - frame
    for p in planted:
        r, c = int(np.floor(p.y + 0.5)), int(np.floor(p.x + 0.5))
        win = diff[r - 3 : r + 4, c - 3 : c + 4]
        assert np.unravel_index(np.argmax(win), win.shape) == (3, 3)  # the peak at the centre's pixel
        assert abs(diff[r, c] - p.amplitude) < 1e-3 * p.amplitude  # the stated peak amplitude
        assert 20.0 <= p.snr <= 30.0
        assert abs(p.amplitude / p.snr - local_noise(frame, r, c)) < 1e-6 * p.amplitude
        assert 1.0 < local_noise(frame, r, c) < 3.0  # it measures the frame's noise sigma (2)
        assert mask[r, c]


def test_planting_avoids_the_mask_each_other_and_the_border() -> None:
    frame = _frame(1)
    avoid = np.zeros(frame.shape, bool)
    avoid[40:50, 60:70] = True
    _, _, planted = plant_targets(frame, 0, 30, avoid=avoid, spacing=8, border=3)
    pts = np.array([[p.x, p.y] for p in planted])
    assert len(pts) > 5
    assert np.all(pts[:, 0] >= 3) and np.all(pts[:, 0] <= 128 - 4) and np.all(pts[:, 1] >= 3)
    for x, y in pts:
        r, c = int(np.floor(y + 0.5)), int(np.floor(x + 0.5))
        assert not avoid[max(r - 8, 0) : r + 9, max(c - 8, 0) : c + 9].any()
    d = np.hypot(*(pts[:, None] - pts[None]).transpose(2, 0, 1))
    assert np.all(d[np.triu_indices(len(pts), 1)] > 8 - 1)


def test_float_frame_in_8bit_units_stays_in_range() -> None:
    frame = np.full((32, 32), 254.3, np.float32)
    frame[::2] = 250.1
    out, _, planted = plant_targets(frame, 0, 2, snr=(50.0, 60.0))
    assert planted and out.max() <= 255.0 and out.dtype == np.float32


def test_examples_of_planted_label_the_detector_finds() -> None:
    frame = _frame()
    out, pmask, planted = plant_targets(frame, 1, 2, snr=(30.0, 40.0), sigma=(0.5, 0.6))
    p = planted[0]
    r, c = int(np.floor(p.y + 0.5)), int(np.floor(p.x + 0.5))
    hit = Target(p.x + 0.3, p.y, 3, (c - 1, r, c + 1, r), 0.9)  # the detector found the first blob
    far = Target(5.0, 5.0, 1, (5, 5, 5, 5), 0.8)  # and a false alarm far from everything
    real = np.zeros(frame.shape, bool)
    ex = examples_of_planted("f", out, [hit, far], pmask, real, 16)
    assert ex.source == ["f:planted+", "f:det-", "f:planted+"]  # the find, the false alarm, the blob's centre
    assert ex.labels.tolist() == [1, 0, 1]
    assert ex.patches.shape == (3, 16, 16)
    rows, cols = np.nonzero(pmask[max(r - 4, 0) : r + 5, max(c - 4, 0) : c + 5])  # the first blob's pixels
    cy, cx = rows.mean() + max(r - 4, 0), cols.mean() + max(c - 4, 0)
    assert np.array_equal(ex.patches[2], extract_patches(out, [(cx, cy)], 16)[0])  # the blob's centroid patch
    assert np.array_equal(ex.patches[0], extract_patches(out, [(hit.x, hit.y)], 16)[0])


def test_epoch_draws_targets_by_share() -> None:
    rng = np.random.default_rng(0)
    pools = {"target": np.arange(0, 10), "planted": np.arange(10, 20), "false_alarm": np.arange(20, 30)}
    idx = _epoch_indices(rng, pools, 1000, {"false_alarm": 1.0, "tophat": 1.0}, {"target": 0.75, "planted": 0.25})
    assert len(idx) == 1000
    assert np.sum(idx < 10) == 375 and np.sum((idx >= 10) & (idx < 20)) == 125 and np.sum(idx >= 20) == 500
