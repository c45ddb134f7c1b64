"""Round 3 of the verifier: point-labelled sequence frames as training data, and the detector-score fusion."""

from __future__ import annotations

import numpy as np

from irstd.inference import Target
from irstd.verify.fusion import FusedVerifier, fit_fusion, fusion_features
from irstd.verify.mining import examples_of_points
from irstd.verify.patches import extract_patches
from irstd.verify.training import _group


def _t(x: float, y: float, area: int = 4, peak: float = 1.0) -> Target:
    return Target(x, y, area, (int(x), int(y), int(x), int(y)), peak)


def test_point_labels_split_hits_clutter_and_the_ambiguous_band() -> None:
    frame = np.arange(64 * 80, dtype=np.float32).reshape(64, 80)
    label = np.array([[40.0, 30.0]])  # x, y
    # 3 px (hit), 4 px (hit, the edge), 6 px (between 4 and 8: left out), 8.5 px and 30 px (clutter)
    dets = [_t(43, 30), _t(40, 34), _t(34, 30), _t(40, 21.5), _t(10, 30)]
    ex = examples_of_points("seq4/7", frame, dets, label, 16, with_labels=True)
    assert ex.labels.tolist() == [1, 1, 0, 0, 1]
    assert ex.source == ["seq4/7:det+", "seq4/7:det+", "seq4/7:det-", "seq4/7:det-", "seq4/7:label+"]
    want = extract_patches(frame, [(43, 30), (40, 34), (40, 21.5), (10, 30), (40.0, 30.0)], 16)
    assert np.array_equal(ex.patches, want)
    assert [_group("seq4-sgem_unet_t.sirst", s, int(l)) for s, l in zip(ex.source, ex.labels)] == \
        ["sequence", "sequence", "sequence_clutter", "sequence_clutter", "sequence"]


def test_fusion_learns_the_peak_and_keeps_what_it_should() -> None:
    rng = np.random.default_rng(0)
    n = 400
    y = np.r_[np.ones(n), np.zeros(n)]
    v = np.full(2 * n, 0.6)  # the verifier cannot tell them apart here
    peak = np.where(y > 0, rng.uniform(0.995, 1.0, 2 * n), rng.uniform(0.5, 0.9, 2 * n))
    w, b = fit_fusion(fusion_features(v, peak, np.full(2 * n, 4.0)), y)
    assert w[1] > 0  # a higher detector peak: more likely a target

    class Flat:  # a verifier whose score is 0.6 for everything
        name = "flat"

        def scores(self, frame, targets):
            return np.full(len(targets), 0.6, np.float32)

    fv = FusedVerifier(Flat(), w, b, 0.5)
    keep = fv.keep(np.zeros((32, 32), np.float32), [_t(10, 10, peak=0.999), _t(20, 20, peak=0.6)])
    assert keep.tolist() == [True, False]
    assert fv.keep(np.zeros((8, 8), np.float32), []).shape == (0,)
