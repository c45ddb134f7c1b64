"""A confirmed track that takes over a clutter spot while its target is missed is released."""

from __future__ import annotations

import numpy as np

from irstd.tracking import Tracker, TrackerParams, confirm_offline


def _scenario() -> list[np.ndarray]:
    """A target moving 2 px/frame in x from (20, 50); at frame 12 it vanishes for good, and a static clutter
    spot sits 5 px from where it would have been (inside the gate) from frame 12 on."""
    dets = []
    for f in range(30):
        rows = [] if f >= 12 else [[20 + 2 * f, 50, 3, 1.0]]
        if f >= 12:
            rows.append([20 + 2 * 12 + 1, 55, 3, 1.0])  # the spot: (45, 55), 5.1 px from the prediction
        dets.append(np.array(rows, dtype=np.float64).reshape(-1, 4))
    return dets


def _run(params: TrackerParams) -> list:
    tracker = Tracker(params)
    return [tracker.update(d, shift=(0.0, 0.0)) for d in _scenario()]


def test_the_track_takes_the_spot_and_is_released() -> None:
    results = _run(TrackerParams())
    ids = {int(i) for r in results[12:] for i in r.track_ids if i >= 0}
    assert ids == {1}  # the spot joined the target's track: no new track
    confirmed = [bool(r.targets) for r in results]
    assert all(confirmed[6:12])  # the moving target
    release = confirmed.index(False, 12)
    p = TrackerParams()
    # the window must first forget the moving part, then release_after failing frames
    assert 12 + p.release_after < release <= 12 + p.motion_window + p.release_after
    assert not any(confirmed[release:])  # for good


def test_without_release_the_spot_stays_a_target() -> None:
    results = _run(TrackerParams(release_after=0))
    assert all(bool(r.targets) for r in results[6:])


def test_offline_confirmation_stops_at_the_release() -> None:
    online = _run(TrackerParams())
    last = max(r.index for r in online if any(not t.predicted for t in r.targets))
    offline = confirm_offline(online)
    assert all(r.targets for r in offline[:last + 1])  # earlier detections confirmed (frames 0-1 included)
    assert not any(r.targets for r in offline[last + 1:])
