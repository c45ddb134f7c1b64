"""Windows around hinted points between full-frame passes: same targets inside, none outside until the
next full pass, exact at the borders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from irstd.errors import ConfigError
from irstd.inference import Predictor, WindowedPredictor
from irstd.inference.windows import plan_windows

SHAPE = (128, 160)
#: (x, y) of the blobs: two inside, two in corners
BLOBS = [(40.3, 30.6), (130.2, 100.4), (1.2, 1.4), (158.4, 126.5)]


def scene(blobs=BLOBS, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = rng.normal(100, 2, SHAPE).astype(np.float32)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    for x, y in blobs:
        f += 60 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 2)
    return f


class LocalContrast(torch.nn.Module):
    """A stand-in network with a stride: logits from a pixel's excess over its 7×7 neighbourhood (in the
    normalised units, so a window normalised by its own statistics would score otherwise)."""

    stride = 8

    def __init__(self, normalization: tuple[float, float] | None) -> None:
        super().__init__()
        self.normalization = normalization

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local = F.avg_pool2d(x, 7, stride=1, padding=3, count_include_pad=False)
        return 4.0 * (x - local) - 24.0


@pytest.fixture(scope="module", params=[None, (100.0, 2.0)], ids=["frame-statistics", "stored-normalisation"])
def tophat(request) -> Predictor:
    """A detector without stored normalisation (windows must use the whole frame's statistics) and one with."""
    return Predictor(LocalContrast(request.param), device="cpu")


def near(targets, x: float, y: float, tol: float = 3.0):
    return [t for t in targets if abs(t.x - x) <= tol and abs(t.y - y) <= tol]


def test_target_in_window_matches_full_frame(tophat: Predictor) -> None:
    frame = scene()
    full = tophat.predict([frame])[0].targets
    w = WindowedPredictor(tophat, full_every=10, window=32)
    w.predict([frame])  # the first frame runs whole
    w.set_hints([(41.0, 31.0), (129.0, 99.0)])
    pred = w.predict([frame])[0]
    assert w.window_frames == 1 and len(w.last_windows) == 2
    assert pred.prob.shape == SHAPE and pred.mask.shape == SHAPE
    for x, y in BLOBS[:2]:
        (a,), (b,) = near(full, x, y), near(pred.targets, x, y)
        assert abs(a.x - b.x) <= 0.5 and abs(a.y - b.y) <= 0.5
        assert a.area == b.area and a.bbox == b.bbox
    assert len(full) == 4 and len(pred.targets) == 2  # the corner blobs lie outside every window
    outside = np.ones(SHAPE, bool)
    for y0, x0, y1, x1 in w.last_windows:
        outside[y0:y1, x0:x1] = False
    assert not pred.prob[outside].any()  # zero outside the windows


def test_target_outside_windows_waits_for_the_full_pass(tophat: Predictor) -> None:
    frame = scene()
    w = WindowedPredictor(tophat, full_every=3, window=32)
    found = []
    for _ in range(7):
        pred = w.predict([frame])[0]
        found.append(len(near(pred.targets, *BLOBS[1])))
        w.set_hints([BLOBS[0]])  # the tracker knows only the first blob
    # frames 0, 3, 6 run whole (every 3rd); the others see only the window around the first blob
    assert found == [1, 0, 0, 1, 0, 0, 1]
    assert (w.full_frames, w.window_frames) == (3, 4)


def test_no_hints_runs_the_full_frame(tophat: Predictor) -> None:
    w = WindowedPredictor(tophat, full_every=10, window=32)
    frame = scene()
    w.predict([frame])
    w.set_hints([])
    assert len(w.predict([frame])[0].targets) == 4 and w.full_frames == 2


def test_border_windows_exact(tophat: Predictor) -> None:
    frame = scene()
    full = tophat.predict([frame])[0]
    w = WindowedPredictor(tophat, full_every=10, window=32)
    w.predict([frame])
    w.set_hints([BLOBS[2], BLOBS[3]])
    pred = w.predict([frame])[0]
    for (y0, x0, y1, x1) in w.last_windows:
        assert 0 <= y0 < y1 <= SHAPE[0] and 0 <= x0 < x1 <= SHAPE[1]
    for x, y in BLOBS[2:]:
        (a,), (b,) = near(full.targets, x, y), near(pred.targets, x, y)
        assert (a.x, a.y) == pytest.approx((b.x, b.y), abs=1e-4) and (a.area, a.bbox) == (b.area, b.bbox)
    # at the frame's corner the window reads what the full pass reads: the same probabilities there
    np.testing.assert_allclose(pred.prob[:8, :8], full.prob[:8, :8], atol=1e-5)
    np.testing.assert_allclose(pred.prob[-8:, -8:], full.prob[-8:, -8:], atol=1e-5)


def test_plan_windows_aligned_clipped_merged() -> None:
    boxes = plan_windows([(3, 3), (200, 150), (205, 152), (639, 511), (1e6, 5)], (512, 640), 64, 16)
    assert len(boxes) == 3  # the two near (200, 150) merge; the far-away point is dropped
    for y0, x0, y1, x1 in boxes:
        assert y0 % 16 == 0 and x0 % 16 == 0 and 0 <= y0 < y1 <= 512 and 0 <= x0 < x1 <= 640
        assert y1 - y0 >= 64 and x1 - x0 >= 64
    assert (0, 0, 64, 64) in boxes and (448, 576, 512, 640) in boxes
    # a frame side that is no multiple of the stride: the border window reaches the border
    (box,) = plan_windows([(99, 99)], (100, 100), 32, 16)
    assert box == (64, 64, 100, 100)
    # touching windows merge (a target on the seam would be cut in two)
    assert len(plan_windows([(16, 16), (48, 16)], (64, 128), 32, 16)) == 1


def test_wrapper_reads_like_a_predictor(tophat: Predictor) -> None:
    w = WindowedPredictor(tophat, full_every=5, window=30)
    assert w.threshold == tophat.threshold and w.stride == tophat.stride == 8
    assert w.label().endswith("windows 32 px, full every 5")  # rounded up to the stride
    with pytest.raises(ConfigError):
        WindowedPredictor(tophat, full_every=0)


def test_scene_cut_runs_the_full_frame(tophat: Predictor) -> None:
    """Hints of the old scene point nowhere: the first frame of a new scene runs whole, at once."""
    a = scene()
    texture = np.random.default_rng(3).normal(0, 8, SHAPE).astype(np.float32)
    b = scene([(90.0, 60.0)], seed=7) + (texture + np.roll(texture, 1, 0) + np.roll(texture, 1, 1)) / 3
    # b: another view (a textured scene), one target where no window looks
    w = WindowedPredictor(tophat, full_every=10, window=32)
    for _ in range(3):
        w.predict([a])
        w.set_hints([BLOBS[0]])
    assert (w.full_frames, w.cuts) == (1, 0)
    pred = w.predict([b])[0]
    assert w.cuts == 1 and w.full_frames == 2 and len(near(pred.targets, 90.0, 60.0)) == 1
    off = WindowedPredictor(tophat, full_every=10, window=32, full_on_cut=False)
    off.predict([a])
    off.set_hints([BLOBS[0]])
    assert not near(off.predict([b])[0].targets, 90.0, 60.0)  # without the test: not until the next full pass


def test_linger_keeps_looking_where_a_hint_was(tophat: Predictor) -> None:
    """A point hinted once keeps its window ``linger`` frames (a young track that died after one miss)."""
    frame = scene()
    w = WindowedPredictor(tophat, full_every=100, window=32, linger=2)
    w.predict([frame])
    w.set_hints([BLOBS[0], BLOBS[1]])
    counts = []
    for _ in range(4):
        counts.append(len(w.predict([frame])[0].targets))
        w.set_hints([BLOBS[0]])  # the second blob's track is gone
    assert counts == [2, 2, 2, 1]


def _zoom_step_frames(step: int, n: int, new: tuple[float, float]) -> list[np.ndarray]:
    """A generated 256×320 view panning 3 px/frame that magnifies 6 % at frame ``step``, where a new
    target (a bright spot at ``new``) appears and stays."""
    from irstd.data.synthetic_sequence import generate_sequence

    seq = generate_sequence(n_frames=n, size=(256, 320), n_targets=1, n_static=0, n_flicker=0, pan=(3, 0),
                            zoom_step=(step, 1.06), seed=0)
    yy, xx = np.mgrid[:256, :320]
    spot = 150 * np.exp(-((xx - new[0]) ** 2 + (yy - new[1]) ** 2) / 2)
    return [f + spot if i >= step else f for i, f in enumerate(seq.frames)]


@pytest.mark.parametrize("soft_cut, seen_at, full, soft", [(0.0, 10, 2, 0), (0.8, 7, 2, 1)])
def test_new_target_after_a_zoom_step(soft_cut: float, seen_at: int, full: int, soft: int) -> None:
    """A zoom step mid-cycle (frame 7 of a 10-frame cycle) is no cut; with ``soft_cut`` its collapsed
    correlation peak (0.63 against the clip's 0.85) runs it whole, and a target new in it is seen at once;
    without, at the next scheduled full pass (frame 10)."""
    new = (250.3, 200.4)
    w = WindowedPredictor(Predictor(LocalContrast(None), device="cpu"), full_every=10, window=32, soft_cut=soft_cut)
    first = None
    for i, frame in enumerate(_zoom_step_frames(7, 11, new)):
        w.set_hints([(60.0, 60.0)])  # a tracked target far from the new one
        if near(w.predict([frame])[0].targets, *new) and first is None:
            first = i
    assert first == seen_at
    assert (w.full_frames, w.soft_cuts, w.cuts) == (full, soft, 0)


def test_full_pass_after_a_missed_confirmed_track(tophat: Predictor) -> None:
    """With ``full_after_miss`` (the default), hints that say a confirmed track was missed make the next
    frame whole (a target that left its window is looked for everywhere); without it, or the flag, windows."""
    frame = scene()
    w = WindowedPredictor(tophat, full_every=100, window=32)
    w.predict([frame])
    runs = []
    for missed in (False, True, False):
        w.set_hints([BLOBS[0]], missed=missed)
        pred = w.predict([frame])[0]
        runs.append(w.last_full)
        assert len(pred.targets) == (4 if w.last_full else 1)
    assert runs == [False, True, False] and (w.full_frames, w.miss_passes) == (2, 1)
    off = WindowedPredictor(tophat, full_every=100, window=32, full_after_miss=False)
    off.predict([frame])
    off.set_hints([BLOBS[0]], missed=True)
    off.predict([frame])
    assert (off.full_frames, off.miss_passes) == (1, 0)


def test_tracking_loop_tells_of_a_missed_confirmed_track() -> None:
    """``track_frames`` passes ``missed=True`` to a predictor that asks (``full_after_miss``) exactly before
    the frame after one where a confirmed track coasted; a predictor that does not ask gets ``set_hints(points)``."""
    from irstd.inference.predictor import Prediction
    from irstd.inference.targets import Target
    from irstd.inference.tracking_run import track_frames

    frame = np.random.default_rng(0).normal(100, 5, (64, 96)).astype(np.float32)  # a still camera

    class Truth:
        """One target moving 3 px/frame, not detected at frame 8."""

        full_after_miss = True

        def __init__(self) -> None:
            self.i, self.missed = 0, []

        def set_hints(self, points, *, missed=False):
            self.missed.append(missed)

        def predict(self, batch):
            x, y, self.i = 10.0 + 3 * self.i, 30.0, self.i + 1
            targets = [] if self.i - 1 == 8 else [Target(x, y, 4, (int(x) - 1, 29, int(x) + 2, 32), 0.9)]
            return [Prediction(np.zeros(frame.shape, np.float32), np.zeros(frame.shape, bool), targets)]

    p = Truth()
    steps = list(track_frames(p, [frame] * 14))
    assert [t.predicted for t in steps[8].result.targets] == [True]  # confirmed before, coasting at 8
    assert [i for i, m in enumerate(p.missed) if m] == [9]  # hints before frame 9 (the call after frame 8)
