"""The tracker on generated sequences: ids through a pan and a missed frame, no clutter confirmed, a cut."""

from __future__ import annotations

import numpy as np
import pytest

from irstd.core.errors import ConfigError
from irstd.data.synthetic_sequence import generate_sequence, ideal_detections
from irstd.tracking import GlobalMotion, Tracker, TrackerParams, as_detections, confirm_offline, track
from irstd.tracking.evaluation import match


def _ids_near(results, points_per_frame, gate=4.0):
    """Per frame, the confirmed target ids within ``gate`` of each point (dict point index → ids)."""
    out = []
    for r, pts in zip(results, points_per_frame):
        tp = np.array([(t.x, t.y) for t in r.targets]).reshape(-1, 2)
        near = {}
        for k, p in enumerate(np.asarray(pts).reshape(-1, 2)):
            d = np.hypot(*(tp - p).T) if len(tp) else np.zeros(0)
            near[k] = [r.targets[j].id for j in np.flatnonzero(d <= gate)]
        out.append(near)
    return out


@pytest.fixture(scope="module")
def panned():
    """40 frames, camera panning 3 px/frame, 2 targets, 6 static and 4 flickering spots; target 1 is not
    drawn in frame 20."""
    seq = generate_sequence(40, pan=(3, 0), dropouts=((1, 20),), seed=0)
    return seq, track(ideal_detections(seq), seq.frames)


def test_one_id_per_target_through_the_pan_and_a_missed_frame(panned) -> None:
    seq, results = panned
    assert not any(r.cut for r in results)
    assert all(abs(r.motion.dx + 3) < 0.5 and abs(r.motion.dy) < 0.5 for r in results[1:])
    ids = {1: set(), 2: set()}
    for r, truth, hidden in zip(results, seq.targets, seq.hidden):
        all_truth = np.concatenate([truth, hidden])
        for tid, x, y in all_truth:
            d = [(t.id, np.hypot(t.x - x, t.y - y)) for t in r.targets]
            ids[int(tid)] |= {i for i, dist in d if dist <= 4}
    assert [len(ids[1]), len(ids[2])] == [1, 1]
    # from frame 5 on, both targets are confirmed in every frame; in frame 20 target 1 is a prediction
    for r, truth, hidden in list(zip(results, seq.targets, seq.hidden))[5:]:
        assert len([t for t in r.targets if not t.predicted]) >= len(truth)
    miss = results[20]
    (pred,) = [t for t in miss.targets if t.predicted and t.id in ids[1]]
    assert np.hypot(pred.x - seq.hidden[20][0, 1], pred.y - seq.hidden[20][0, 2]) < 4


def test_no_static_or_flickering_clutter_is_confirmed(panned) -> None:
    seq, results = panned
    false = 0
    for r, truth, hidden in zip(results, seq.targets, seq.hidden):
        tp = np.array([(t.x, t.y) for t in r.targets]).reshape(-1, 2)
        _, paired = match(tp, np.concatenate([truth, hidden])[:, 1:])
        false += int((~paired).sum())
    assert false == 0
    assert len({t.id for r in results for t in r.targets}) == 2


def test_re_acquisition_after_a_cut() -> None:
    seq = generate_sequence(60, pan=(2, 1), cut_at=30, seed=1)
    results = track(ideal_detections(seq), seq.frames)
    assert [r.index for r in results if r.cut] == [30]
    confirmed_ids = {t.id for r in results for t in r.targets}
    assert len(confirmed_ids) == 4  # two targets per scene, new ids after the cut
    before = {t.id for r in results[:30] for t in r.targets}
    after = {t.id for r in results[30:] for t in r.targets}
    assert not before & after
    first = min(r.index for r in results[30:] if len(r.targets) == 2)
    assert first - 30 <= 6
    false = sum(int((~match(np.array([(t.x, t.y) for t in r.targets]).reshape(-1, 2), tr[:, 1:])[1]).sum())
                for r, tr in zip(results, seq.targets))
    assert false == 0


def test_offline_confirms_the_detections_before_confirmation() -> None:
    seq = generate_sequence(20, pan=(0, 0), seed=2)
    online = track(ideal_detections(seq), seq.frames)
    offline = confirm_offline(online)
    first_on = min(r.index for r in online if r.targets)
    first_off = min(r.index for r in offline if r.targets)
    assert first_off == 0 < first_on
    assert {t.id for r in offline for t in r.targets} == {t.id for r in online for t in r.targets}


def test_a_hovering_target_is_confirmed_by_the_hover_rule_only() -> None:
    still = [np.array([[40.0, 40.0, 3, 0.95]])] * 12
    assert not any(r.targets for r in track(still, params=TrackerParams(hover_frames=0)))
    rs = track(still, params=TrackerParams(hover_frames=10))
    assert [bool(r.targets) for r in rs] == [False] * 9 + [True] * 3
    dim = [np.array([[40.0, 40.0, 3, 0.6]])] * 12  # score below hover_score: clutter-like, never confirmed
    assert not any(r.targets for r in track(dim, params=TrackerParams(hover_frames=10)))


def test_known_shift_moves_clutter_with_the_camera() -> None:
    """Given shifts, a spot that follows the camera stays put in the scene: never confirmed."""
    t = Tracker()
    for i in range(15):
        r = t.update(np.array([[50.0 - 4 * i, 30.0]]), shift=(-4.0 if i else 0.0, 0.0))
    assert not r.targets and t.n_tracks == 1
    t2 = Tracker()  # without compensation the same spot looks like a mover
    assert any(t2.update(np.array([[50.0 - 4 * i, 30.0]])).targets for i in range(15))


def test_detections_in_every_form() -> None:
    class T:
        def __init__(self, x, y):
            self.x, self.y, self.area, self.peak = x, y, 4, 0.7

    assert as_detections([T(1, 2)]).tolist() == [[1, 2, 4, 0.7]]
    assert as_detections(np.array([[1.0, 2.0]])).tolist() == [[1, 2, 1, 1]]
    assert as_detections([]).shape == (0, 4)
    assert as_detections(np.zeros((0, 4))).shape == (0, 4)
    with pytest.raises(ConfigError):
        as_detections(np.zeros(3))
    with pytest.raises(ConfigError, match="birth_hits"):
        TrackerParams(birth_hits=6, birth_window=5)


def test_motion_estimate_of_a_known_shift_and_a_cut() -> None:
    rng = np.random.default_rng(0)
    from irstd.data.synthetic import fractal_noise

    big = fractal_noise(rng, (300, 300), 3.0) * 20 + 100
    g = GlobalMotion()
    g.update(big[50:178, 50:210])
    m = g.update(big[47:175, 55:215])  # the view moved right 5, up 3: content moves left 5, down 3
    assert abs(m.dx + 5) < 0.3 and abs(m.dy - 3) < 0.3 and not m.cut
    other = fractal_noise(np.random.default_rng(1), (128, 160), 3.0) * 20 + 100
    assert g.update(other).cut


def test_a_real_detector_on_generated_frames() -> None:
    """tophat on the frames: the clutter it raises is never confirmed, both targets are."""
    import torch

    from irstd.models import create_model

    seq = generate_sequence(30, pan=(2, 0), seed=3)
    model = create_model("tophat").eval()
    dets = []
    with torch.no_grad():
        for f in seq.frames:
            x = torch.from_numpy((f - f.mean()) / f.std())[None, None]
            mask = (model(x)[0, 0] > 0).numpy()
            dets.append(_centroids(mask, f))
    results = track(dets, seq.frames)
    assert sum(len(d) for d in dets) > 2 * len(dets)  # clutter spots are detected too
    tgt = [np.hypot(*(np.array([(t.x, t.y) for t in r.targets]).reshape(-1, 1, 2) - tr[None, :, 1:]).transpose(2, 0, 1))
           for r, tr in zip(results, seq.targets)]
    false = sum(int((d.min(axis=1) > 4).sum()) if d.size else 0 for d in tgt)
    assert false == 0
    assert len({t.id for r in results for t in r.targets}) == 2


def _centroids(mask: np.ndarray, frame: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    lab, n = ndimage.label(mask, np.ones((3, 3)))
    if n == 0:
        return np.zeros((0, 4))
    idx = np.arange(1, n + 1)
    cy, cx = np.array(ndimage.center_of_mass(mask, lab, idx)).reshape(-1, 2).T
    area = ndimage.sum(mask, lab, idx)
    peak = ndimage.maximum(frame, lab, idx)
    return np.column_stack([cx, cy, area, peak])


def test_a_spot_fixed_in_the_image_during_a_pan_is_no_target() -> None:
    """A sensor defect stays put in the image while the camera pans: it moves in the scene, but the image
    rule (min_image_displacement) keeps it out; with the rule off it would be confirmed."""
    det = np.array([[80.0, 60.0, 3, 0.8]])
    on = Tracker()
    off = Tracker(TrackerParams(min_image_displacement=0.0))
    hits_on = [bool(on.update(det, shift=(-4.0, 0.0)).targets) for _ in range(15)]
    hits_off = [bool(off.update(det, shift=(-4.0, 0.0)).targets) for _ in range(15)]
    assert not any(hits_on) and any(hits_off)
