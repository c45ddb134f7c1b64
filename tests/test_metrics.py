"""Metrics on hand-made masks; every expected figure is worked out by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from irstd.errors import ConfigError, DataError
from irstd.metrics import (
    SegMetrics,
    SegResult,
    ThresholdSweep,
    auc,
    image_counts,
    reduce_counts,
)


def blank(h: int, w: int) -> np.ndarray:
    return np.zeros((h, w), dtype=bool)


def result_of(pred: np.ndarray, gt: np.ndarray, **kw) -> SegResult:
    return reduce_counts([image_counts(pred, gt, **kw)])


def logits_of(pred: np.ndarray) -> torch.Tensor:
    """Hard logits (+8 / -8) of a binary map, shape (1, H, W)."""
    return torch.from_numpy(np.where(pred, 8.0, -8.0).astype(np.float32))[None]


# ------------------------------------------------------------------------------------------ basics


def test_perfect_image() -> None:
    # 10x10, a 2x2 target and a 1-px target, predicted exactly
    gt = blank(10, 10)
    gt[2:4, 2:4] = True
    gt[7, 7] = True
    r = result_of(gt.copy(), gt)
    assert (r.iou, r.niou, r.precision, r.recall, r.f1) == (1.0, 1.0, 1.0, 1.0, 1.0)
    assert (r.pd, r.fa, r.target_precision, r.target_f1) == (1.0, 0.0, 1.0, 1.0)
    assert (r.n_targets, r.n_pixels, r.n_images) == (2, 100, 1)


def test_missed_target() -> None:
    # 16x16: A = 2x2 at (1..2, 1..2) is found, B = 3x3 at (10..12, 10..12) is missed
    gt = blank(16, 16)
    gt[1:3, 1:3] = True
    gt[10:13, 10:13] = True
    pred = blank(16, 16)
    pred[1:3, 1:3] = True
    c = image_counts(pred, gt)
    assert (c.tp, c.fp, c.fn) == (4, 0, 9)
    r = reduce_counts([c])
    assert r.iou == pytest.approx(4 / 13)  # 4 / (4 + 0 + 9)
    assert r.recall == pytest.approx(4 / 13) and r.precision == 1.0
    assert r.pd == 0.5  # 1 of 2 targets
    assert r.fa == 0.0
    assert r.target_precision == 1.0  # 1 predicted component, matched
    assert r.target_f1 == pytest.approx(2 / 3)  # 2·1·0.5 / (1 + 0.5)


def test_false_alarm_far_away() -> None:
    # 16x16 = 256 px: the 2x2 target is found, a 1x3 blob at (12, 12..14) is a false alarm
    gt = blank(16, 16)
    gt[1:3, 1:3] = True
    pred = gt.copy()
    pred[12, 12:15] = True
    r = result_of(pred, gt)
    assert r.iou == pytest.approx(4 / 7)  # tp 4, fp 3
    assert r.precision == pytest.approx(4 / 7) and r.recall == 1.0
    assert r.pd == 1.0
    assert r.fa == pytest.approx(3 / 256 * 1e6)  # 11718.75 in units of 1e-6
    assert r.target_precision == 0.5  # 1 of 2 predicted components matched


def test_centroid_distance_2px_hit_4px_miss() -> None:
    # 21x21 = 441 px; target = 1 px at (10, 10); predicted 3x1 vertical bar centred on (10, c)
    gt = blank(21, 21)
    gt[10, 10] = True
    near, far = blank(21, 21), blank(21, 21)
    near[9:12, 12] = True  # centroid (10, 12): distance 2 < 3 -> hit
    far[9:12, 14] = True  # centroid (10, 14): distance 4 -> miss
    r_near, r_far = result_of(near, gt), result_of(far, gt)
    assert r_near.pd == 1.0 and r_near.fa == 0.0 and r_near.target_precision == 1.0
    assert r_near.iou == 0.0  # no pixel overlaps: detection and segmentation are different things
    assert r_far.pd == 0.0 and r_far.target_precision == 0.0
    assert r_far.fa == pytest.approx(3 / 441 * 1e6)
    # the distance is a parameter: 5 px accepts the far bar
    assert result_of(far, gt, distance=5.0).pd == 1.0


def test_distance_is_strict() -> None:
    # 1-px prediction exactly 3 px to the right: 3 < 3 is false -> miss
    gt, pred = blank(9, 9), blank(9, 9)
    gt[4, 2] = True
    pred[4, 5] = True
    assert result_of(pred, gt).pd == 0.0


def test_equal_area_false_alarms_are_counted() -> None:
    # 12x12 = 144 px; three 2x2 predicted blobs (area 4 each), only the first lies on the target.
    # Removing "the matched area by value" from a list of areas [4, 4, 4] would drop all three and
    # report Fa = 0; the two unmatched blobs are 8 false-alarm pixels.
    gt = blank(12, 12)
    gt[2:4, 2:4] = True  # centroid (2.5, 2.5)
    pred = gt.copy()
    pred[2:4, 6:8] = True  # centroid (2.5, 6.5): 4 px away, separated by a 2-px gap -> unmatched
    pred[8:10, 2:4] = True  # centroid (8.5, 2.5): 6 px away -> unmatched
    c = image_counts(pred, gt)
    assert (c.n_pred_components, c.n_matched_preds, c.fa_pixels) == (3, 1, 8)
    r = reduce_counts([c])
    assert r.fa == pytest.approx(8 / 144 * 1e6)
    assert r.pd == 1.0 and r.target_precision == pytest.approx(1 / 3)


def test_one_to_one_greedy_matching() -> None:
    # two 1-px targets at (5, 4) and (5, 6); one predicted 1-px blob at (5, 5), 1 px from both.
    # The first target (label order) takes it; the second finds nothing left -> Pd = 1/2.
    gt, pred = blank(11, 11), blank(11, 11)
    gt[5, 4] = gt[5, 6] = True
    pred[5, 5] = True
    c = image_counts(pred, gt)
    assert (c.n_targets, c.n_matched_targets, c.n_matched_preds, c.fa_pixels) == (2, 1, 1, 0)
    # seen from the targets: the first one is found, the second is not, and the prediction is used
    from irstd.core.components import connected_components
    from irstd.metrics.counting import found_targets, match_targets

    gt_cc, pr_cc = connected_components(gt), connected_components(pred)
    assert found_targets(gt_cc, pr_cc, 3.0).tolist() == [True, False]
    assert match_targets(gt_cc, pr_cc, 3.0).tolist() == [True]


def test_connectivity_4_vs_8_on_diagonal_pair() -> None:
    # prediction: diagonal pair (5, 5), (6, 6); target: the single pixel (5, 5)
    gt, pred = blank(12, 12), blank(12, 12)
    gt[5, 5] = True
    pred[5, 5] = pred[6, 6] = True
    c8 = image_counts(pred, gt, connectivity=8)
    # 8-connected: one component, centroid (5.5, 5.5), 0.71 px away -> matched, no false alarm
    assert (c8.n_pred_components, c8.n_matched_preds, c8.fa_pixels) == (1, 1, 0)
    c4 = image_counts(pred, gt, connectivity=4)
    # 4-connected: two components; (5, 5) takes the target, (6, 6) is left over -> 1 false-alarm px
    assert (c4.n_pred_components, c4.n_matched_preds, c4.fa_pixels) == (2, 1, 1)
    # and the same pair as a target counts as 1 target (8) or 2 targets (4)
    assert image_counts(pred, pred, connectivity=8).n_targets == 1
    assert image_counts(pred, pred, connectivity=4).n_targets == 2
    with pytest.raises(ConfigError, match="4 or 8"):
        image_counts(pred, gt, connectivity=6)


def test_f1_identity_with_accumulated_counts() -> None:
    rng = np.random.default_rng(0)
    counts = [image_counts(rng.random((20, 24)) > 0.8, rng.random((20, 24)) > 0.85) for _ in range(5)]
    r = reduce_counts(counts)
    assert 0.0 < r.iou < 1.0
    assert r.f1 == pytest.approx(2 * r.iou / (1 + r.iou), abs=1e-12)
    assert r.f1 == pytest.approx(2 * r.precision * r.recall / (r.precision + r.recall), abs=1e-12)
    tp, tf = r.target_precision, r.pd
    assert r.target_f1 == pytest.approx(2 * tp * tf / (tp + tf), abs=1e-12)


def test_zero_denominators() -> None:
    empty = reduce_counts([])
    assert empty.n_images == 0 and all(math.isnan(getattr(empty, f)) for f in ("iou", "niou", "pd", "fa", "f1"))
    # an empty mask, empty prediction: nothing is defined except Fa = 0
    r = result_of(blank(8, 8), blank(8, 8))
    assert math.isnan(r.iou) and math.isnan(r.niou) and math.isnan(r.pd) and math.isnan(r.precision)
    assert math.isnan(r.target_precision) and math.isnan(r.target_f1) and r.fa == 0.0
    # targets but no prediction: precisions undefined, recalls and F1s are 0
    gt = blank(8, 8)
    gt[3, 3] = True
    r = result_of(blank(8, 8), gt)
    assert math.isnan(r.precision) and math.isnan(r.target_precision)
    assert (r.recall, r.f1, r.pd, r.target_f1, r.iou, r.niou) == (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


# ------------------------------------------------------------------------------------------ accumulator


def test_images_of_different_sizes_in_one_update() -> None:
    # A: 8x12 (96 px), 2x2 target predicted exactly -> tp 4, IoU 1
    # B: 10x6 (60 px), 1-px target at (5, 3) missed, 1-px prediction at (0, 0) -> fp 1, fn 1, IoU 0
    gt_a, gt_b = blank(8, 12), blank(10, 6)
    gt_a[3:5, 6:8] = True
    gt_b[5, 3] = True
    pred_b = blank(10, 6)
    pred_b[0, 0] = True
    m = SegMetrics()
    # logits as (1, H, W) tensors, masks as (H, W) uint8 0/255 arrays
    m.update([logits_of(gt_a), logits_of(pred_b)], [gt_a.astype(np.uint8) * 255, gt_b.astype(np.uint8) * 255])
    r = m.compute()
    assert (r.n_images, r.n_pixels, r.n_targets) == (2, 156, 2)
    assert r.iou == pytest.approx(4 / 6)  # tp 4 / (4 + 1 + 1)
    assert r.niou == pytest.approx(0.5)  # (1 + 0) / 2
    assert r.pd == 0.5
    assert r.fa == pytest.approx(1 / 156 * 1e6)
    assert [c.iou for c in m.per_image] == [1.0, 0.0]
    assert m.per_image[1] == image_counts(pred_b, gt_b)


def test_batch_tensor_and_reset() -> None:
    gt = blank(16, 16)
    gt[4:6, 4:6] = True
    batch = torch.stack([logits_of(gt), logits_of(blank(16, 16))])  # (2, 1, 16, 16)
    masks = torch.from_numpy(np.stack([gt, gt])[:, None].astype(np.float32))
    m = SegMetrics()
    new = m.update(batch, masks)
    assert len(new) == 2 and len(m) == 2
    r = m.compute()
    assert r.pd == 0.5 and r.iou == 0.5  # tp 4, fn 4
    m.reset()
    assert len(m) == 0 and m.per_image == []
    with pytest.raises(DataError, match="does not match"):
        m.update(batch, masks[:, :, :8])
    with pytest.raises(DataError, match="2 predictions but 1 masks"):
        m.update(batch, masks[:1])


def test_empty_mask_and_empty_prediction_skipped_by_niou() -> None:
    gt = blank(10, 10)
    gt[2:4, 2:4] = True
    m = SegMetrics(inputs="probs")
    # A: perfect (IoU 1); B: empty mask, empty prediction -> skipped, nIoU stays 1 (not 0.5)
    m.update([gt.astype(np.float32), blank(10, 10).astype(np.float32)], [gt, blank(10, 10)])
    r = m.compute()
    assert r.niou == 1.0 and r.n_niou_images == 1 and r.n_images == 2
    # C: empty mask with one predicted pixel -> IoU 0, counted: nIoU = (1 + 0) / 2
    fa = blank(10, 10)
    fa[8, 8] = True
    m.update([fa.astype(np.float32)], [blank(10, 10)])
    r = m.compute()
    assert r.niou == 0.5 and r.n_niou_images == 2
    assert r.fa == pytest.approx(1 / 300 * 1e6)


def test_threshold_parameter() -> None:
    # probabilities on the target pixels: 0.3, 0.5, 0.6, 0.9 (2x2 target, 4 px); background 0.0
    gt = blank(6, 6)
    gt[2:4, 2:4] = True
    probs = np.zeros((6, 6), dtype=np.float32)
    probs[2, 2], probs[2, 3], probs[3, 2], probs[3, 3] = 0.3, 0.5, 0.6, 0.9
    tp_at = {}
    for t in (0.2, 0.5, 0.7, 0.95):
        m = SegMetrics(threshold=t, inputs="probs")
        m.update(probs[None], gt[None])
        tp_at[t] = m.per_image[0].tp
    # > 0.2: all 4; > 0.5: 0.6 and 0.9 (0.5 itself is not above); > 0.7: 0.9; > 0.95: none
    assert tp_at == {0.2: 4, 0.5: 2, 0.7: 1, 0.95: 0}
    with pytest.raises(ConfigError):
        SegMetrics(threshold=1.5)
    with pytest.raises(ConfigError, match="logits"):
        SegMetrics(inputs="scores")


def test_logits_and_probs_agree() -> None:
    logits = torch.randn(3, 1, 20, 24) * 3
    masks = (torch.rand(3, 1, 20, 24) > 0.9).to(torch.uint8)
    a, b, c = SegMetrics(inputs="logits"), SegMetrics(inputs="probs"), SegMetrics(inputs="logits")
    a.update(logits, masks)
    b.update(torch.sigmoid(logits), masks)
    c.update(logits.numpy(), masks.numpy())
    assert a.per_image == b.per_image == c.per_image
    assert a.per_image[0].tp > 0 and a.per_image[0].fp > 0  # the comparison is not between empties


# ------------------------------------------------------------------------------------------ sweep


def test_sweep_matches_single_threshold_metrics() -> None:
    rng = np.random.default_rng(1)
    probs = rng.random((2, 1, 18, 18)).astype(np.float32)
    gt = rng.random((2, 1, 18, 18)) > 0.8
    ts = [0.3, 0.6, 0.9]
    sweep = ThresholdSweep(ts, inputs="probs")
    sweep.update(probs, gt)
    res = sweep.compute()
    for k, t in enumerate(ts):
        m = SegMetrics(threshold=t, inputs="probs")
        m.update(probs, gt)
        assert res.results[k] == m.compute()
        # the sweep's per-image counts at threshold k are those of SegMetrics and of image_counts
        for i in range(2):
            assert sweep.per_image[i][k] == m.per_image[i] == image_counts(probs[i] > t, gt[i])
    # higher threshold -> fewer predicted pixels -> recall and fpr do not increase
    assert np.all(np.diff(res.recall) <= 0) and np.all(np.diff(res.fpr) <= 0)
    assert res.precision.shape == res.pd.shape == res.fa.shape == (3,)


def test_auc_helpers() -> None:
    assert auc([0, 1], [0, 1]) == pytest.approx(0.5)
    assert auc([1, 0, 0.5], [1, 0, 0.5]) == pytest.approx(0.5)  # order does not matter
    assert auc([0, 0.5, float("nan"), 1], [1, 1, 0, 1]) == pytest.approx(1.0)  # NaN point dropped
    # a perfect separator: target pixels 0.9, background 0.1 -> ROC AUC 1
    gt = blank(10, 10)
    gt[3:5, 3:5] = True
    sweep = ThresholdSweep([0.25, 0.5, 0.75], inputs="probs")
    sweep.update(np.where(gt, 0.9, 0.1)[None], gt[None])
    assert sweep.compute().roc_auc() == pytest.approx(1.0)


def test_to_markdown() -> None:
    gt = blank(16, 16)
    gt[1:3, 1:3] = True
    pred = gt.copy()
    pred[12, 12:15] = True
    r = result_of(pred, gt)  # IoU 4/7 = 57.14 %, Fa = 3/256 ·1e6 = 11718.75
    md = r.to_markdown("toy")
    head, rule, row = md.splitlines()
    assert "IoU (%)" in head and "Fa (1e-6)" in head and head.startswith("| model")
    assert row.split(" | ")[0] == "| toy"
    assert " 57.14 " in row and " 11718.75 " in row and " 100.00 " in row
    assert "n/a" in result_of(blank(4, 4), blank(4, 4)).to_markdown()
    assert r.as_dict()["fa"] == r.fa


# ------------------------------------------------------------------------------------------ state and merge


def _images(n: int, seed: int) -> tuple[list[torch.Tensor], list[np.ndarray]]:
    """``n`` images of varying sizes: (1, H, W) logits and (H, W) masks with a few targets."""
    rng = np.random.default_rng(seed)
    logits, masks = [], []
    for i in range(n):
        h, w = 12 + 3 * (i % 4), 14 + 2 * (i % 3)
        empty = i % 5 == 0  # every 5th image: empty mask and empty prediction (skipped by nIoU)
        masks.append(rng.random((h, w)) > (1.0 if empty else 0.9))
        noise = rng.normal(size=(1, h, w)).astype(np.float32) * 3
        logits.append(torch.from_numpy(noise - 20.0 if empty else noise))
    return logits, masks


def _same_result(a: SegResult, b: SegResult) -> bool:
    """Every field equal, NaN equal to NaN."""
    da, db = a.as_dict(), b.as_dict()
    return da.keys() == db.keys() and all(
        da[k] == db[k] or (math.isnan(da[k]) and math.isnan(db[k])) for k in da
    )


def _same_sweep(a, b) -> bool:
    arrays = ("thresholds", "fpr", "precision", "recall", "pd", "fa")
    return all(np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True) for f in arrays) and all(
        _same_result(x, y) for x, y in zip(a.results, b.results, strict=True)
    )


@pytest.mark.parametrize("cuts", [(5,), (3, 8)], ids=["2 accumulators", "3 accumulators"])
def test_merge_equals_one_accumulator(cuts: tuple[int, ...]) -> None:
    logits, masks = _images(11, seed=3)
    one, one_sweep = SegMetrics(), ThresholdSweep([0.2, 0.5, 0.8])
    for p, m in zip(logits, masks):  # one image at a time, as the evaluation loop does
        one.update([p], [m])
        one_sweep.update([p], [m])
    bounds = (0, *cuts, len(logits))
    parts, sweeps = [], []
    for lo, hi in zip(bounds[:-1], bounds[1:]):  # contiguous shares, as ranks of a sampler get them
        part, sweep = SegMetrics(), ThresholdSweep([0.2, 0.5, 0.8])
        part.update(logits[lo:hi], masks[lo:hi])
        sweep.update(logits[lo:hi], masks[lo:hi])
        parts.append(part)
        sweeps.append(sweep)
    merged = parts[0].merge(*parts[1:])
    merged_sweep = sweeps[0].merge(*sweeps[1:])
    assert merged is parts[0] and len(merged) == len(one) == 11
    assert one.compute().n_targets > 0 and one.compute().n_niou_images < 11  # not a comparison of empties
    assert _same_result(merged.compute(), one.compute())
    assert merged.per_image == one.per_image
    assert np.array_equal(merged.state_dict()["rows"], one.state_dict()["rows"])
    assert merged_sweep.per_image == one_sweep.per_image
    assert _same_sweep(merged_sweep.compute(), one_sweep.compute())
    assert merged_sweep.compute().roc_auc() == one_sweep.compute().roc_auc()


def test_merge_keeps_the_order_given() -> None:
    logits, masks = _images(4, seed=5)
    a, b, ab, ba = SegMetrics(), SegMetrics(), SegMetrics(), SegMetrics()
    a.update(logits[:2], masks[:2])
    b.update(logits[2:], masks[2:])
    ab.update(logits, masks)
    ba.update(logits[2:] + logits[:2], masks[2:] + masks[:2])
    merged_ab = SegMetrics().merge(a, b)
    merged_ba = SegMetrics().merge(b, a)
    assert merged_ab.per_image == ab.per_image and merged_ba.per_image == ba.per_image
    assert merged_ab.per_image != merged_ba.per_image
    assert a.merge(a).per_image == a.per_image[:2] * 2  # merging with itself appends a copy


def test_state_dict_round_trip_through_pickle() -> None:
    import pickle

    logits, masks = _images(6, seed=7)
    m = SegMetrics(threshold=0.4, distance=4.0, connectivity=4)
    s = ThresholdSweep([0.1, 0.6], connectivity=4)
    m.update(logits, masks)
    s.update(logits, masks)
    for acc in (m, s):
        state = pickle.loads(pickle.dumps(acc.state_dict()))
        assert isinstance(state["rows"], np.ndarray) and state["rows"].dtype == np.int64
        again = type(acc).from_state_dict(state)
        assert again.per_image == acc.per_image and len(again) == 6
        loaded = type(acc)(**{k: state[k] for k in state if k not in ("kind", "columns", "rows")})
        loaded.load_state_dict(state)
        assert loaded.per_image == acc.per_image
    assert SegMetrics.from_state_dict(pickle.loads(pickle.dumps(m.state_dict()))).threshold == 0.4
    assert _same_result(SegMetrics.from_state_dict(m.state_dict()).compute(), m.compute())
    assert _same_sweep(ThresholdSweep.from_state_dict(s.state_dict()).compute(), s.compute())
    assert m.state_dict()["rows"].shape == (6, 12) and s.state_dict()["rows"].shape == (6, 2, 12)
    # the state is a copy: updating afterwards does not change it, loading replaces the counts
    state = m.state_dict()
    m.update(logits[:1], masks[:1])
    assert len(state["rows"]) == 6 and len(m) == 7
    m.load_state_dict(state)
    assert len(m) == 6
    m.reset()
    assert m.per_image == [] and m.state_dict()["rows"].shape == (0, 12)


def test_merge_and_load_refuse_other_settings() -> None:
    a, b = SegMetrics(threshold=0.5), SegMetrics(threshold=0.6)
    with pytest.raises(ConfigError, match="threshold"):
        a.merge(b)
    with pytest.raises(ConfigError, match="connectivity"):
        a.merge(SegMetrics(connectivity=4))
    with pytest.raises(ConfigError, match="ThresholdSweep"):
        a.merge(ThresholdSweep())
    with pytest.raises(ConfigError, match="thresholds"):
        ThresholdSweep([0.3]).merge(ThresholdSweep([0.3, 0.6]))
    with pytest.raises(ConfigError, match="threshold"):
        a.load_state_dict(b.state_dict())
    with pytest.raises(ConfigError, match="ThresholdSweep"):
        a.load_state_dict(ThresholdSweep().state_dict())
    # inputs only say how predictions arrive: counts of logits and of probabilities merge
    logits, masks = _images(2, seed=9)
    p = SegMetrics(inputs="probs")
    p.update([torch.sigmoid(x) for x in logits], masks)
    assert len(SegMetrics().merge(p)) == 2


def test_rows_grow_past_their_capacity() -> None:
    # 37 single-image updates outgrow the first buffers (16, then 32 rows); one batch of the same 37
    logits, masks = _images(37, seed=11)
    one_by_one, batched = SegMetrics(), SegMetrics()
    for p, m in zip(logits, masks):
        one_by_one.update([p], [m])
    batched.update(logits, masks)
    assert len(one_by_one) == 37 and one_by_one.per_image == batched.per_image
    assert _same_result(one_by_one.compute(), batched.compute())


def test_as_dict_keys_and_removed_names() -> None:
    import irstd.metrics

    keys = list(result_of(blank(4, 4), blank(4, 4)).as_dict())
    assert keys == ["iou", "niou", "precision", "recall", "f1", "pd", "fa", "target_precision", "target_f1",
                    "n_images", "n_targets", "n_pixels", "n_niou_images"]  # target_recall (= pd) is gone
    assert not hasattr(irstd.metrics, "sweep_counts")  # ThresholdSweep.per_image / image_counts instead
    assert not hasattr(image_counts(blank(3, 3), blank(3, 3)), "inter")  # = tp
