"""The matched-rejection threshold rule (docs/verify.md, fourth round)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from irstd.verify.net import VerifierNet
from irstd.verify.training import PatchSet, _scores, matched_threshold
from irstd.verify.verifier import Verifier


def _set(n: int, seed: int) -> PatchSet:
    rng = np.random.default_rng(seed)
    patches = rng.normal(0, 1, (n, 48, 48)).astype(np.float32)
    labels = (np.arange(n) % 4 == 0).astype(np.uint8)  # every fourth a target: left out of the match
    source = np.asarray([f"f{i}:det{'+' if l else '-'}" for i, l in enumerate(labels)])
    return PatchSet("v2-train-x", patches, labels, source)


def _verifier(seed: int, threshold: float) -> Verifier:
    torch.manual_seed(seed)
    return Verifier(VerifierNet(8).eval(), threshold)


@pytest.mark.parametrize("quantile", [0.2, 0.5, 0.9])
def test_matched_threshold_rejects_the_reference_share_of_kept_apart_clutter(quantile: float) -> None:
    sets = [_set(300, 0), _set(200, 1)]
    ref, new = _verifier(0, 0.5), _verifier(1, 0.5)
    clutter = np.concatenate([s.patches[s.kept_apart & (s.labels == 0)] for s in sets])
    assert 50 < len(clutter) < 200  # about a fifth of the 375 clutter patches
    # untrained nets score in a narrow band: put the reference's threshold inside its own scores
    ref_scores = _scores(ref.net, clutter, 32)
    ref.threshold = float(np.quantile(ref_scores, quantile))
    want = float(np.mean(ref_scores < ref.threshold))
    assert 0.1 < want < 0.95
    t, share = matched_threshold(new, ref, sets)
    assert share == pytest.approx(want)
    got = float(np.mean(_scores(new.net, clutter, 32) < t))
    assert abs(got - want) <= 1.0 / len(clutter) + 1e-9
    # targets and the frames used for training play no part: changing them leaves the threshold alone
    for s in sets:
        train = ~s.kept_apart | (s.labels == 1)
        s.patches[train] = 0.0
    assert matched_threshold(new, ref, sets) == pytest.approx((t, share))


def test_matched_threshold_needs_clutter() -> None:
    s = _set(40, 2)
    s.labels[:] = 1
    with pytest.raises(ValueError, match="no kept-apart clutter"):
        matched_threshold(_verifier(0, 0.5), _verifier(1, 0.5), [s])
