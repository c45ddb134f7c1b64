"""Early confirmation (``early_step``): a new track that steps far enough between its first two frames is a
target at its second detection; clutter that does not step, or steps only with the image, is not."""

from __future__ import annotations

import numpy as np
import pytest

from irstd.core.errors import ConfigError
from irstd.data.synthetic_sequence import generate_sequence, ideal_detections
from irstd.tracking import Tracker, TrackerParams, track
from irstd.tracking.evaluation import match


def _first_confirmed(results, truth) -> int | None:
    """The first frame in which a confirmed target lies within 4 px of a drawn target."""
    for r, t in zip(results, truth):
        tp = np.array([(x.x, x.y) for x in r.targets]).reshape(-1, 2)
        if match(tp, t[:, 1:])[0].any():
            return r.index
    return None


def _false(results, truth) -> int:
    return sum(int((~match(np.array([(x.x, x.y) for x in r.targets]).reshape(-1, 2), t[:, 1:])[1]).sum())
               for r, t in zip(results, truth))


@pytest.fixture(scope="module")
def fast():
    """20 frames, a still camera, one target at 5.5-6 px/frame, 6 static and 4 flickering clutter spots."""
    seq = generate_sequence(20, size=(256, 320), n_targets=1, pan=(0, 0), speed=(5.5, 6.0), seed=3)
    return seq, ideal_detections(seq)


def test_a_fast_target_is_confirmed_at_its_second_detection(fast) -> None:
    seq, dets = fast
    early = track(dets, seq.frames)
    assert _first_confirmed(early, seq.targets) == 1
    assert _first_confirmed(track(dets, seq.frames, TrackerParams(early_step=0.0)), seq.targets) == 2
    # the target is confirmed from frame 1 on in every frame, and no clutter ever is
    assert sum(bool(match(np.array([(x.x, x.y) for x in r.targets]).reshape(-1, 2), t[:, 1:])[0].all())
               for r, t in zip(early, seq.targets)) == 19
    assert _false(early, seq.targets) == 0


def test_a_slow_target_waits_for_the_line(fast) -> None:
    """Stepping 5.5-6 px, the target is not early with early_step 7: the 3-point line confirms it at frame 2."""
    seq, dets = fast
    assert _first_confirmed(track(dets, seq.frames, TrackerParams(early_step=7.0)), seq.targets) == 2


def _hop(shift: tuple[float, float], image_step: tuple[float, float]) -> list:
    """One spot seen in two frames, ``image_step`` apart in the image, the camera moving ``shift`` between."""
    tracker = Tracker()
    first = tracker.update(np.array([[100.0, 100.0, 3, 1.0]]), shift=(0.0, 0.0))
    second = tracker.update(np.array([[100.0 + image_step[0], 100.0 + image_step[1], 3, 1.0]]), shift=shift)
    return [first, second]


def test_the_step_must_be_in_the_scene_and_in_the_image() -> None:
    assert [len(r.targets) for r in _hop((0.0, 0.0), (6.0, 0.0))] == [0, 1]  # 6 px in both
    assert [len(r.targets) for r in _hop((0.0, 0.0), (4.0, 0.0))] == [0, 0]  # 4 px < early_step
    assert [len(r.targets) for r in _hop((-6.0, 0.0), (0.0, 0.0))] == [0, 0]  # fixed in the image: 0 px there
    assert [len(r.targets) for r in _hop((6.0, 0.0), (6.0, 0.0))] == [0, 0]  # moves with the scene: 0 px in it


def test_early_step_is_checked() -> None:
    with pytest.raises(ConfigError, match="early_step"):
        TrackerParams(early_step=-1.0)
