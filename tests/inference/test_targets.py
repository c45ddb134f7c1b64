"""Fragment merging (issue 35, item 2): components within the merge distance are one target, with a
pixel-weighted centroid, the union box, the summed area and the highest peak; the metrics do not merge;
the stride pad is one setting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from irstd.core.errors import ConfigError
from irstd.core.padding import STRIDE_PAD_MODE, pad_to_multiple
from irstd.inference import Predictor
from irstd.inference.targets import MERGE_DISTANCE, check_merge_distance, extract_targets, merge_groups
from irstd.metrics import image_counts
from irstd.models import create_model


def _two_blobs(gap: int) -> tuple[np.ndarray, np.ndarray]:
    """A 3×3 blob at rows 10-12, columns 10-12 (prob 0.9) and a 1×2 blob (prob 0.7) on row 11,
    starting ``gap`` columns after column 12: their nearest pixel centres are ``gap`` px apart."""
    prob = np.zeros((40, 60), np.float32)
    prob[10:13, 10:13] = 0.9
    prob[11, 12 + gap : 14 + gap] = 0.7
    return prob, prob > 0.5


def test_two_components_2px_apart_are_one_detection() -> None:
    prob, mask = _two_blobs(2)  # columns 10-12 and 14-15: one empty column between
    assert [t.area for t in extract_targets(prob, mask, merge_distance=0)] == [9, 2]
    (t,) = extract_targets(prob, mask, merge_distance=3)
    # by hand: 9 pixels at x = 10, 11, 12 (three rows each) and 2 at x = 14, 15 on row 11
    # x = (9·11 + 14 + 15) / 11 = 128 / 11; y = (9·11 + 2·11) / 11 = 11
    assert t.x == pytest.approx(128 / 11) and t.y == pytest.approx(11.0)
    assert t.area == 11 and t.bbox == (10, 10, 15, 12) and t.peak == pytest.approx(0.9)


def test_two_components_20px_apart_stay_two() -> None:
    prob, mask = _two_blobs(20)
    targets = extract_targets(prob, mask, merge_distance=3)
    assert [(t.x, t.y, t.area, t.bbox) for t in targets] == [
        (11.0, 11.0, 9, (10, 10, 12, 12)), (32.5, 11.0, 2, (32, 11, 33, 11))]
    assert targets[1].peak == pytest.approx(0.7)


def test_distance_is_euclidean_and_inclusive() -> None:
    labels = np.zeros((10, 10), np.int32)
    labels[2, 2], labels[4, 3] = 1, 2  # nearest pixel centres √5 ≈ 2.24 px apart
    assert merge_groups(labels, 2, 2.2).tolist() == [0, 1]
    assert merge_groups(labels, 2, 2.25).tolist() == [0, 0]
    labels[4, 3], labels[2, 5] = 0, 2  # exactly 3 px apart on a row
    assert merge_groups(labels, 2, 3.0).tolist() == [0, 0] and merge_groups(labels, 2, 2.99).tolist() == [0, 1]


def test_merging_is_transitive_and_keeps_raster_order() -> None:
    mask = np.zeros((20, 40), bool)
    mask[5, [0, 3, 6, 9]] = True  # a chain of pieces 3 px apart: one target
    mask[0, 30] = True  # a first-row piece far away: the first target in raster order
    targets = extract_targets(mask.astype(np.float32), mask, merge_distance=3)
    assert [(t.x, t.y, t.area, t.bbox) for t in targets] == [(30.0, 0.0, 1, (30, 0, 30, 0)), (4.5, 5.0, 4, (0, 5, 9, 5))]


def test_unmerged_targets_equal_the_components() -> None:
    rng = np.random.default_rng(0)
    prob = rng.random((64, 80)).astype(np.float32)
    mask = prob > 0.97
    apart = extract_targets(prob, mask, merge_distance=0)
    assert len(apart) > len(extract_targets(prob, mask, merge_distance=MERGE_DISTANCE))
    assert sum(t.area for t in apart) == mask.sum()


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf")])
def test_bad_merge_distance_is_refused(bad: float) -> None:
    with pytest.raises(ConfigError, match="merge distance"):
        check_merge_distance(bad)
    with pytest.raises(ConfigError, match="merge distance"):
        Predictor(create_model("unet", widths=(4, 8, 16, 32, 64)), (0.0, 1.0), device="cpu", merge_distance=bad)


def test_predictor_merges_by_default_and_metrics_do_not() -> None:
    class Fixed(torch.nn.Module):
        """Logits +10 on two blobs 2 px apart, -10 elsewhere (stride 1, no padding involved)."""

        stride, normalization = 1, (0.0, 1.0)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.full_like(x, -10.0)
            out[..., 10:13, 10:13] = 10.0
            out[..., 11, 14:16] = 10.0
            return out

    frame = np.zeros((40, 60), np.float32)
    assert len(Predictor(Fixed(), device="cpu").predict(frame)[0].targets) == 1
    pred = Predictor(Fixed(), device="cpu", merge_distance=0).predict(frame)[0]
    assert len(pred.targets) == 2
    # the Pd / Fa protocol counts the mask's components as published: two predicted components
    assert image_counts(pred.mask, np.zeros_like(pred.mask)).n_pred_components == 2


def test_stride_pad_is_one_setting_and_replicate_repeats_the_edge() -> None:
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    assert STRIDE_PAD_MODE == "constant"  # the shipped models' operating points were chosen with it
    assert torch.equal(pad_to_multiple(x, 8)[0], pad_to_multiple(x, 8, STRIDE_PAD_MODE)[0])
    padded, size = pad_to_multiple(x, 8, "replicate")
    assert size == (3, 4) and padded.shape == (1, 1, 8, 8)
    assert torch.equal(padded[0, 0, 7], torch.tensor([8.0, 9, 10, 11, 11, 11, 11, 11]))
    assert torch.equal(padded[0, 0, :, 7], torch.tensor([3.0, 7, 11, 11, 11, 11, 11, 11]))
    assert pad_to_multiple(torch.arange(12.0).reshape(3, 4), 8, "replicate")[0].shape == (8, 8)  # any leading dims


def _whole_frame_targets(prob: np.ndarray, mask: np.ndarray, connectivity: int, distance: float) -> list[tuple]:
    """The whole-frame computation extract_targets made before it worked on the on pixels only (scipy's
    per-label maximum and boxes, the shifted-frame comparison for the merge): the reference it must equal."""
    from scipy import ndimage
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as graph_components

    from irstd.core.components import connected_components
    from irstd.inference.targets import _offsets

    cc = connected_components(mask, connectivity)
    if cc.n == 0:
        return []
    labels, n = cc.labels, cc.n
    h, w = labels.shape
    group = np.arange(n)
    pairs = []
    for dy, dx in _offsets(distance) if distance > 0 and n > 1 else []:
        if dy >= h or abs(dx) >= w:
            continue
        a = labels[: h - dy, max(0, -dx) : w - max(0, dx)]
        b = labels[dy:, max(0, dx) : w - max(0, -dx)]
        link = (a > 0) & (b > 0) & (a != b)
        if link.any():
            pairs.append(np.stack([a[link], b[link]], axis=1))
    if pairs:
        ab = np.unique(np.concatenate(pairs) - 1, axis=0)
        _, group = graph_components(coo_matrix((np.ones(len(ab)), (ab[:, 0], ab[:, 1])), shape=(n, n)), directed=False)
    peaks = ndimage.maximum(prob, labels, np.arange(1, n + 1))
    boxes = np.array([(s[1].start, s[0].start, s[1].stop - 1, s[0].stop - 1) for s in ndimage.find_objects(labels)])
    rows, cols = np.nonzero(labels)
    pg = group[labels[rows, cols] - 1]
    g = int(group.max()) + 1
    area = np.bincount(pg, minlength=g)
    cy, cx = np.bincount(pg, weights=rows, minlength=g) / area, np.bincount(pg, weights=cols, minlength=g) / area
    out = []
    for k in range(g):
        m = group == k
        b = boxes[m]
        out.append((float(cx[k]), float(cy[k]), int(area[k]),
                    (int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max())), float(peaks[m].max())))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_targets_from_on_pixels_equal_the_whole_frame_computation(seed: int) -> None:
    # random sparse masks (components on every border, fragments within and beyond the merge distance):
    # every field of every target equals the whole-frame computation, bit for bit
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 40, size=2) if seed == 0 else rng.integers(20, 90, size=2)
    prob = rng.random((h, w)).astype(np.float32)
    mask = prob > rng.uniform(0.8, 0.99)
    for connectivity in (4, 8):
        for distance in (0.0, 1.5, 2.0, MERGE_DISTANCE, 5.5):
            got = [(t.x, t.y, t.area, t.bbox, t.peak) for t in extract_targets(prob, mask, connectivity, distance)]
            assert got == _whole_frame_targets(prob, mask, connectivity, distance)
