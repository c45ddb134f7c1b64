"""Camera models beyond the shift: the similarity/affine estimate and the tracker's compensation with it."""

from __future__ import annotations

import numpy as np
import pytest

from irstd.core.errors import ConfigError
from irstd.data.synthetic_sequence import generate_sequence, ideal_detections
from irstd.inference.tracking_run import result_from_record, track_record
from irstd.tracking import GlobalMotion, MotionEstimate, Tracker, TrackerParams
from irstd.tracking.evaluation import match


def _expected(zoom: float, degrees: float, pan: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The generator's frame-to-frame transform about the frame's centre: A and the centre's shift d."""
    t = np.radians(degrees)
    a = zoom * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return a, -a @ np.asarray(pan, dtype=np.float64)


@pytest.mark.parametrize("model", ["similarity", "affine"])
@pytest.mark.parametrize("seed", [1, 2])
def test_estimate_recovers_zoom_rotation_and_shift(model: str, seed: int) -> None:
    seq = generate_sequence(n_frames=2, size=(256, 320), pan=(3, 1), zoom=1.05, rotation=2.0, n_targets=0,
                            n_static=0, n_flicker=0, seed=seed)
    assert seq.zoom == [1.0, 1.05] and seq.angle == pytest.approx([0.0, 2.0])
    g = GlobalMotion(model=model)
    assert g.update(seq.frames[0]).is_shift  # the first frame: no motion
    e = g.update(seq.frames[1])
    a, d = _expected(1.05, 2.0, (3, 1))
    assert not e.cut and not e.is_shift
    assert e.scale == pytest.approx(1.05, abs=0.004)
    assert e.angle == pytest.approx(2.0, abs=0.15)
    assert (e.dx, e.dy) == pytest.approx(tuple(d), abs=0.3)
    assert (e.cx, e.cy) == (159.5, 127.5)
    corners = np.array([[0.0, 0.0], [319.0, 255.0], [319.0, 0.0]])
    want = (corners - (159.5, 127.5)) @ a.T + (159.5, 127.5) + d
    assert np.abs(e.apply(corners) - want).max() < 1.0  # px, at the corners (about 200 px from the centre)


def test_translation_model_and_small_warps_keep_the_shift() -> None:
    seq = generate_sequence(n_frames=2, size=(256, 320), pan=(3, 1), zoom=1.05, rotation=2.0, n_targets=0,
                            n_static=0, n_flicker=0, seed=1)
    g = GlobalMotion()  # translation (the estimator's own default): the linear part is never estimated
    g.update(seq.frames[0])
    assert g.update(seq.frames[1]).is_shift
    still = generate_sequence(n_frames=2, size=(256, 320), pan=(3, 1), n_targets=0, seed=1)
    g = GlobalMotion(model="similarity", min_warp=1.0)  # a pure pan: the fit moves no corner by 1 px
    g.update(still.frames[0])
    e = g.update(still.frames[1])
    assert e.is_shift and (e.dx, e.dy) == pytest.approx((-3.0, -1.0), abs=0.4)
    with pytest.raises(ConfigError, match="camera model"):
        TrackerParams(camera="zoom")
    with pytest.raises(ConfigError, match="camera model"):
        GlobalMotion(model="perspective")


def test_tracker_warps_tracks_with_the_camera() -> None:
    """Static points under a known zoom and rotation (given as estimates): one track each, none confirmed;
    under the shift alone the outer points seem to move and are confirmed."""
    rng = np.random.default_rng(0)
    pts = rng.uniform(40, 280, (12, 2))
    c = np.array([159.5, 127.5])
    a = 1.02 * np.array([[np.cos(0.01), -np.sin(0.01)], [np.sin(0.01), np.cos(0.01)]])
    est = MotionEstimate(1.5, -0.5, 1.0, 1.0, False, tuple(a.ravel()), *c)
    shift_only = MotionEstimate(1.5, -0.5, 1.0, 1.0, False)
    full, shift = Tracker(TrackerParams(camera="similarity")), Tracker(TrackerParams(camera="translation"))
    p = pts.copy()
    for i in range(15):
        if i:
            p = est.apply(p)
        det = np.column_stack([p, np.full(len(p), 3.0), np.full(len(p), 0.6)])
        r_full = full.update(det, motion=est if i else None)
        r_shift = shift.update(det, motion=shift_only if i else None)
    assert full.n_tracks == 12 and sorted(r_full.track_ids) == list(range(1, 13))
    assert r_full.targets == []
    assert len(r_shift.targets) > 0


def _false_and_found(seq, params: TrackerParams) -> tuple[int, int, int]:
    g = GlobalMotion.for_params(params)
    tracker = Tracker(params)
    false = found = labels = 0
    for det, frame, truth in zip(ideal_detections(seq, seed=0), seq.frames, seq.targets):
        r = tracker.update(det, motion=g.update(frame))
        ok, paired = match(np.array([(t.x, t.y) for t in r.targets]).reshape(-1, 2), truth[:, 1:])
        false += int((~paired).sum())
        found += int(ok.sum())
        labels += len(truth)
    return false, found, labels


def test_zoom_step_confirms_no_static_clutter_with_the_similarity_model() -> None:
    seq = generate_sequence(n_frames=30, size=(256, 320), pan=(2, 1), zoom_step=(12, 1.08), n_static=12,
                            n_flicker=0, seed=3)
    false_t, found_t, labels = _false_and_found(seq, TrackerParams(camera="translation"))
    false_s, found_s, _ = _false_and_found(seq, TrackerParams(camera="similarity", min_warp=0.5))
    assert labels == 60
    assert false_s == 0 and found_s >= 50  # the two targets confirmed, no clutter
    assert false_t >= 20  # the step makes static clutter jump, and translation lets it pass as motion


def test_record_keeps_the_linear_part() -> None:
    est = MotionEstimate(1.5, -0.5, 0.9, 0.8, False, (1.01, -0.02, 0.02, 1.01), 319.5, 255.5)
    from irstd.tracking import FrameResult

    res = FrameResult(0, np.zeros((0, 4)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool), [], motion=est)
    rec = track_record({"frame": 0, "targets": [], "height": 512, "width": 640}, res)
    assert rec["motion"]["linear"] == [1.01, -0.02, 0.02, 1.01] and rec["motion"]["centre"] == [319.5, 255.5]
    back = result_from_record(rec).motion
    assert (back.linear, back.cx, back.cy, back.dx, back.dy) == (est.linear, 319.5, 255.5, 1.5, -0.5)
    shift = FrameResult(0, np.zeros((0, 4)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool), [],
                        motion=MotionEstimate(1.0, 2.0, 0.9, 0.8, False))
    assert "linear" not in track_record({"frame": 0, "targets": []}, shift)["motion"]


def test_resume_replays_the_linear_part() -> None:
    """With the similarity model, replaying finished records (their stored zoom) gives an unbroken run's records."""
    import json

    from irstd.inference import Predictor
    from irstd.inference.tracking_run import track_frames

    seq = generate_sequence(n_frames=14, size=(128, 160), pan=(2, 0), zoom=1.01, seed=2)
    frames = [np.clip(f, 0, 255).astype(np.uint8) for f in seq.frames]
    pred = Predictor.from_checkpoint("tophat", device="cpu")
    params = TrackerParams(camera="similarity")
    straight = [s.record for s in track_frames(pred, list(frames), params=params)]
    assert any("linear" in (r["motion"] or {}) for r in straight)
    for n in (1, 8):
        again = [s.record for s in track_frames(pred, list(frames), params=params, replay_records=straight[:n])]
        assert json.dumps(again) == json.dumps(straight)


def test_default_keeps_the_shift_on_a_pan() -> None:
    """The default camera (similarity, min_warp 0.5): on a pure pan every frame keeps the shift alone, so the
    tracks equal the translation model's."""
    assert (TrackerParams().camera, TrackerParams().min_warp) == ("similarity", 0.5)
    seq = generate_sequence(n_frames=40, size=(128, 160), cut_at=20, seed=4)
    dets = ideal_detections(seq, seed=0)
    runs = []
    for p in (TrackerParams(), TrackerParams(camera="translation", min_warp=0.0)):
        g, t = GlobalMotion.for_params(p), Tracker(p)
        motions = [g.update(f) for f in seq.frames]
        assert all(m.is_shift for m in motions)
        runs.append([(r.track_ids.tolist(), [(x.id, x.x, x.y) for x in r.targets])
                     for r in (t.update(d, motion=m) for d, m in zip(dets, motions))])
    assert runs[0] == runs[1]
