"""A target faster than the gate relative to the scene (docs/tracking.md, "Limits" and the fifth pass): the gate
bounds the distance a track may jump in the scene, so a target moving 11.7 px/frame there (7.5 px/frame in the
image while the camera pans 7 px/frame) was never followed by the fourth pass's births (gate 10 px); a
detection that happens to lie between two of its positions can start a track that follows it (what seq5
frames 15-32 showed with and without a verifier), and detections far from it change nothing. The defaults
confirm it since the fifth pass: a track born in the last frame may take, in a second assignment among what
the first left over, a detection within its gate of its one detection in the IMAGE; such a wide step is
confirmed by the line (third detection), not by the early step."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from irstd.data.synthetic_sequence import generate_sequence, ideal_detections
from irstd.tracking import Tracker, TrackerParams, track
from irstd.tracking.evaluation import match


@pytest.fixture(scope="module")
def fast_against_the_scene():
    """16 frames, the camera panning 7 px/frame, one target at 11.7 px/frame in the scene, clutter."""
    seq = generate_sequence(16, size=(256, 320), n_targets=1, pan=(7, 0), speed=(11.0, 12.0), seed=0)
    return seq, ideal_detections(seq)


def _on_target(results, seq) -> tuple[list[bool], int]:
    """Per frame, whether a confirmed target lies within 4 px of the target; and how many tracks its
    detections belonged to."""
    found, ids = [], set()
    for r, t in zip(results, seq.targets):
        tp = np.array([(x.x, x.y) for x in r.targets]).reshape(-1, 2)
        found.append(bool(match(tp, t[:, 1:])[0].any()))
        ids.add(int(r.track_ids[np.argmin(np.hypot(*(r.detections[:, :2] - t[0, 1:]).T))]))
    return found, len(ids)


def _with_far_detections(dets: list[np.ndarray], seq, k: int = 6, seed: int = 1) -> list[np.ndarray]:
    """``k`` more detections per frame at random places at least 150 px from the target."""
    rng = np.random.default_rng(seed)
    out = []
    for d, t in zip(dets, seq.targets):
        pts: list[np.ndarray] = []
        while len(pts) < k:
            p = rng.uniform((0, 0), (320, 256))
            if np.hypot(*(p - t[0, 1:])) >= 150:
                pts.append(p)
        out.append(np.vstack([d, np.column_stack([pts, np.full(k, 3.0), np.ones(k)])]))
    return out


def _bridged(dets: list[np.ndarray], seq) -> list[np.ndarray]:
    """A faint candidate in frame 0 half-way (in the scene) between the target's frames 0 and 1."""
    t0, t1 = seq.targets[0][0, 1:], seq.targets[1][0, 1:]
    step = (t1 + seq.camera[1]) - (t0 + seq.camera[0])  # the target's scene step, 11.7 px
    out = [d.copy() for d in dets]
    out[0] = np.vstack([out[0], [*(t0 + 0.5 * step), 2.0, 0.5]])
    return out


# the births of the fourth pass: no wider association for young tracks
_FOURTH = replace(TrackerParams(), birth_image=False, birth_second_pass=False)


def test_a_target_faster_than_the_gate_in_the_scene_starts_a_new_track_every_frame(fast_against_the_scene) -> None:
    """With the fourth pass's births; the defaults confirm it (the next test)."""
    seq, dets = fast_against_the_scene
    steps = np.hypot(*np.diff([t[0, 1:] + c for t, c in zip(seq.targets, seq.camera)], axis=0).T)
    assert steps.min() > TrackerParams().gate  # 11.7 px in the scene against the 10 px gate
    found, tracks = _on_target(track(dets, seq.frames, _FOURTH), seq)
    assert sum(found) == 0 and tracks == 16
    # the gate is the reason: with a 15 px gate one track follows it, a target from its second frame on
    found, tracks = _on_target(track(dets, seq.frames, replace(_FOURTH, gate=15.0)), seq)
    assert found == [False] + [True] * 15 and tracks == 1


def test_the_defaults_follow_it_by_its_image_step(fast_against_the_scene) -> None:
    """Its second detection steps 11.7 px in the scene but 7.5 in the image: one track, a target from its
    third detection on (the line; a wide step does not confirm early), far detections changing nothing.
    Were the early step allowed for it, a target from its second."""
    seq, dets = fast_against_the_scene
    for d in (dets, _with_far_detections(dets, seq)):
        found, tracks = _on_target(track(d, seq.frames), seq)
        assert found == [False] * 2 + [True] * 14 and tracks == 1
    found, tracks = _on_target(track(dets, seq.frames, replace(TrackerParams(), birth_early=True)), seq)
    assert found == [False] + [True] * 15 and tracks == 1


def test_a_candidate_between_two_positions_bridges_it(fast_against_the_scene) -> None:
    """The candidate's track takes the target's next detection (5.9 px from the candidate, 11.7 from the
    target's own track) and, given a velocity by then, follows it."""
    seq, dets = fast_against_the_scene
    for params in (TrackerParams(), _FOURTH):  # an ordinary step: the image births do not come into it
        found, tracks = _on_target(track(_bridged(dets, seq), seq.frames, params), seq)
        assert found == [False] + [True] * 15 and tracks == 2


@pytest.mark.parametrize("bridge", [False, True])
@pytest.mark.parametrize("params", [TrackerParams(), _FOURTH], ids=["default", "fourth-pass"])
def test_far_detections_change_nothing_about_the_target(fast_against_the_scene, bridge: bool,
                                                         params: TrackerParams) -> None:
    seq, dets = fast_against_the_scene
    dets = _bridged(dets, seq) if bridge else dets
    assert _on_target(track(_with_far_detections(dets, seq), seq.frames, params), seq) == \
        _on_target(track(dets, seq.frames, params), seq)


def _pan_pair(shown_b: list[bool], a_from: int = 0, offset: float = 14.0) -> list[np.ndarray]:
    """Detections of a camera panning 7 px/frame (content moving -7 px/frame in the image): a static spot A
    shown from frame ``a_from`` on, and a flickering spot B ``offset`` px before it in the scene, shown
    where ``shown_b``. With offset 14, A lies 14 px from B in the scene but 7 px from B's last image
    position one frame later: within the gate of B's young track in the image."""
    out = []
    for i, b in enumerate(shown_b):
        cam = -7.0 * i
        pts = ([(100 + offset + cam + 300, 50.0)] if i >= a_from else []) + ([(100 + cam + 300, 50.0)] if b else [])
        out.append(np.array([(x, y, 3.0, 1.0) for x, y in pts]).reshape(-1, 4))
    return out


def _run_shifts(dets: list[np.ndarray], params: TrackerParams) -> list:
    t = Tracker(params)
    return [t.update(d, shift=(0.0, 0.0) if i == 0 else (-7.0, 0.0)) for i, d in enumerate(dets)]


@pytest.mark.parametrize("params", [TrackerParams(), replace(TrackerParams(), birth_early=True), _FOURTH],
                         ids=["default", "early-wide-steps", "fourth-pass"])
def test_a_flickering_spot_beside_a_static_one_in_a_pan_is_not_confirmed(params: TrackerParams) -> None:
    """The static spot's own track takes it at ≈ 0 px in the scene in the first assignment, before any young
    track may try the image step in the second: 2 tracks (A's, B's), no confirmed target in 30 frames."""
    shown = [bool(int(c)) for c in "101101001101011001011010011010"]
    results = _run_shifts(_pan_pair(shown), params)
    ids = {int(i) for r in results for i in r.track_ids}
    assert sum(len(r.targets) for r in results) == 0
    assert ids == {1, 2}


def test_a_spot_appearing_where_a_young_track_steps_in_the_image_is_not_confirmed() -> None:
    """Why a wide step waits for the line (``birth_early`` off): B shown once in frame 3, A appearing in
    frame 4 where B's image step leads, never seen before. B's young track takes A (14 px in the scene, 7
    in the image), then loses it (a static spot does not step on) and dies: nothing confirmed. Were the
    early step allowed for a wide step, it would be a target in frame 4 and its coast in frame 5."""
    shown = [False] * 3 + [True] + [False] * 11
    dets = _pan_pair(shown, a_from=4)
    results = _run_shifts(dets, TrackerParams())
    assert sum(len(r.targets) for r in results) == 0
    assert results[4].track_ids.tolist() == [results[3].track_ids[0]]  # A joined B's young track
    conf = [len(r.targets) for r in _run_shifts(dets, replace(TrackerParams(), birth_early=True))]
    assert conf == [0] * 4 + [1, 1] + [0] * 9
    assert sum(len(r.targets) for r in _run_shifts(dets, _FOURTH)) == 0
