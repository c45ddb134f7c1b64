"""Track evaluation against point labels on hand-made scenarios with hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pytest

from irstd.core.errors import DataError
from irstd.tracking import FrameResult, TrackedTarget
from irstd.tracking.evaluation import (clip_starts, detection_scores, evaluate_tracking, first_found_delays,
                                       labels_with_clip_ids, read_point_labels, track_metrics)

pytest.importorskip("motmetrics")


def test_mota_idf1_and_switches_by_hand() -> None:
    """One object over 4 frames. Hypothesis 7 follows it in frames 0-1, a false 9 in frame 1, nothing in
    frame 2, hypothesis 8 takes it in frame 3.

    MOTA = 1 - (FN 1 + FP 1 + IDSW 1) / 4 objects = 25 %.
    IDF1: best id pairing 1↔7, IDTP 2, IDFN 4-2 = 2, IDFP 4 hypotheses - 2 = 2 → 2·2 / (2·2 + 2 + 2) = 50 %.
    """
    labels = [np.array([[1, 10 + i, 10]]) for i in range(4)]
    hyps = [np.array([[7, 10, 10]]), np.array([[7, 11, 10], [9, 50, 50]]), np.zeros((0, 3)), np.array([[8, 13.5, 10]])]
    m = track_metrics(hyps, labels, gate=4.0)
    assert m["mota"] == pytest.approx(25.0)
    assert m["idf1"] == pytest.approx(50.0)
    assert m["num_switches"] == 1 and m["num_false_positives"] == 1 and m["num_misses"] == 1


def test_a_hypothesis_beyond_the_gate_is_a_miss_and_a_false_target() -> None:
    m = track_metrics([np.array([[3, 15, 10]])], [np.array([[1, 10, 10]])], gate=4.0)
    assert m["mota"] == pytest.approx(-100.0)  # 1 - (1 miss + 1 false) / 1


def test_detection_scores_by_hand() -> None:
    labels = [np.array([[10.0, 10.0]]), np.array([[20.0, 20.0]])]
    points = [np.array([[12.0, 11.0], [11.0, 10.0], [40.0, 40.0]]), np.array([[25.0, 20.0]])]
    s, found = detection_scores(points, labels, (500, 1000), gate=4.0)
    # frame 0: found by (11,10) (nearest: one-to-one), 2 false; frame 1: 5 px away, missed, 1 false
    assert (s.found, s.labels, s.pd, s.false_per_frame, s.frames_with_false) == (1, 2, 50.0, 1.5, 100.0)
    assert s.false_per_mpx == pytest.approx(3.0)  # 1.5 per frame on 0.5 Mpx
    assert found.tolist() == [True, False]


def test_clips_and_delays() -> None:
    pts = np.array([[0, 0], [2, 0], [4, 0], [100, 50], [102, 50], [104, 50]], dtype=float)
    assert clip_starts(pts) == [0, 3]
    assert [int(a[0, 0]) for a in labels_with_clip_ids(pts)] == [1, 1, 1, 2, 2, 2]
    assert first_found_delays(np.array([False, True, True, False, False, False]), [0, 3]) == [1, None]


def test_evaluate_tracking_on_frame_results() -> None:
    det = np.array([[10.0, 10.0, 1, 1], [50.0, 50.0, 1, 1]])
    r = [FrameResult(i, det, np.array([1, 2]), np.array([i > 0, False]),
                     [TrackedTarget(1, 10, 10, False, 1.0, 0)] if i else []) for i in range(3)]
    e = evaluate_tracking(r, [np.array([[1, 10, 10]])] * 3, (100, 100))
    assert (e.raw.pd, e.raw.false_per_frame) == (100.0, 1.0)
    assert (round(e.confirmed.pd, 2), e.confirmed.false_per_frame) == (66.67, 0.0)
    assert e.raw_delays == [0] and e.confirmed_delays == [1]
    assert e.mot["num_switches"] == 0


def test_label_file(tmp_path) -> None:
    f = tmp_path / "seq.txt"
    f.write_text("290,32\n288,29\n")
    assert read_point_labels(f).tolist() == [[32, 290], [29, 288]]
    f.write_text("290;32\n")
    with pytest.raises(DataError, match="seq.txt"):
        read_point_labels(f)
