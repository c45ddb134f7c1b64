"""False alarms on negatives, exact pixel AP / ROC AUC, the sweep's grid and Pd at a false-alarm level."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from irstd.core.errors import DataError
from irstd.metrics import (PixelScores, ThresholdSweep, average_precision, count_negative, logit_thresholds, pd_at,
                           roc_auc, summarize_by_group, summarize_negatives, worst_frames)


def test_negative_counts_exact() -> None:
    a = np.zeros((10, 10), bool)
    a[0, 0] = a[1, 1] = True  # one 8-connected component of 2 px (two under 4-connectivity)
    a[5, 5:8] = True  # a second one, 3 px
    b = np.zeros((10, 20), bool)
    c = np.zeros((10, 10), np.float32)
    c[9, 9] = 0.9  # above 0.5: one false target of one pixel
    c[0, 9] = 0.5  # not above 0.5 (prob > threshold)
    rows = [count_negative("a", a, group="g1"), count_negative("b", b, group="g1"),
            count_negative("c", c, group="g2", threshold=0.5)]
    assert [(r.fa_pixels, r.false_targets, r.n_pixels) for r in rows] == [(5, 2, 100), (0, 0, 200), (1, 1, 100)]
    assert count_negative("a4", a, connectivity=4).false_targets == 3
    s = summarize_negatives(rows)
    assert (s.n_frames, s.n_pixels, s.fa_pixels, s.false_targets) == (3, 400, 6, 3)
    assert s.fa == pytest.approx(6 / 400 * 1e6)
    assert s.false_targets_per_frame == pytest.approx(1.0)
    assert s.false_targets_per_mp == pytest.approx(3 / 400 * 1e6)
    assert s.frames_with_false_target == pytest.approx(2 / 3)
    groups = summarize_by_group(rows)
    assert list(groups) == ["g1", "g2"] and groups["g1"].false_targets == 2 and groups["g2"].n_pixels == 100
    assert [r.name for r in worst_frames(rows, 2)] == ["a", "c"]
    assert math.isnan(summarize_negatives([]).fa)
    with pytest.raises(DataError, match="needs a probability map"):
        count_negative("x", a, threshold=0.5)


def _brute_ap(s: np.ndarray, y: np.ndarray) -> float:
    """AP by definition: for each distinct score (descending), recall gain × precision of score ≥ it."""
    total, prev_r = 0.0, 0.0
    for t in sorted(set(s.tolist()), reverse=True):
        pred = s >= t
        r = (pred & y).sum() / y.sum()
        total += (r - prev_r) * (pred & y).sum() / pred.sum()
        prev_r = r
    return total


def _brute_auc(s: np.ndarray, y: np.ndarray) -> float:
    """P(pos > neg) + ½ P(tie), over every pair."""
    pairs = list(itertools.product(s[y], s[~y]))
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ap_and_roc_auc_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 6, size=60).astype(float)  # many ties
    y = rng.random(60) < 0.3
    assert average_precision(s, y) == pytest.approx(_brute_ap(s, y))
    assert roc_auc(s, y) == pytest.approx(_brute_auc(s, y))


def test_ap_hand_computed() -> None:
    s, y = np.array([0.9, 0.8, 0.7, 0.6]), np.array([True, False, True, False])
    assert average_precision(s, y) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert roc_auc(s, y) == pytest.approx(0.75)
    assert math.isnan(average_precision(s, np.zeros(4, bool)))
    assert math.isnan(roc_auc(s, np.ones(4, bool)))


def test_pixel_scores_rank_logits_past_float32_saturation() -> None:
    logits = torch.tensor([[30.0, 20.0], [-5.0, 25.0]])  # all three positives' sigmoids are 1.0 in float32
    mask = torch.tensor([[1, 0], [0, 1]])
    acc = PixelScores()
    acc.update([logits], [mask])
    assert acc.average_precision() == pytest.approx(1.0)  # 30 and 25 rank above 20
    assert acc.roc_auc() == pytest.approx(1.0)
    probs = PixelScores("probs")
    probs.update([torch.sigmoid(logits)], [mask])
    assert probs.roc_auc() < 1.0  # the saturated tie is what the logits avoid
    merged = PixelScores.from_state_dict(acc.state_dict()).merge(probs.__class__.from_state_dict(acc.state_dict()))
    assert merged.roc_auc() == pytest.approx(1.0) and len(merged) == 2


def test_saturated_map_curve_reaches_both_ends() -> None:
    # a saturated network: prob exactly 1.0 on the target and on a distant false blob, tiny elsewhere
    prob = np.full((32, 32), 1e-3, np.float32)
    mask = np.zeros((32, 32), np.uint8)
    mask[5:7, 5:7] = 1
    prob[5:7, 5:7] = 1.0
    prob[20:22, 20:22] = 1.0
    sw = ThresholdSweep(inputs="probs")
    sw.update([prob], [mask])
    r = sw.compute()
    assert np.array_equal(r.thresholds, logit_thresholds())
    assert r.recall.max() == 1.0 and r.recall.min() == 0.0  # reaches recall 1 and 0
    assert r.pd[-2] == 1.0 and r.pd[-1] == 0.0  # BELOW_ONE keeps the saturated pixels; 1.0 keeps none
    assert r.fa[-1] == 0.0


def test_pd_at_fa_hand_made() -> None:
    ts = [0.1, 0.5, 0.9]
    pd, fa = [1.0, 0.8, 0.5], [20.0, 1.0, 0.5]
    assert pd_at(1.0, pd, fa, ts) == (0.8, 0.5)  # best Pd with Fa ≤ 1
    assert pd_at(10.0, pd, fa, ts) == (0.8, 0.5)
    assert pd_at(0.6, pd, fa, ts) == (0.5, 0.9)
    assert all(math.isnan(v) for v in pd_at(0.1, pd, fa, ts))  # no threshold reaches the level
    assert pd_at(0.6, [0.5, 0.5], [0.2, 0.1], [0.3, 0.7]) == (0.5, 0.3)  # ties: the lowest threshold
