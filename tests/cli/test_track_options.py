"""``irstd track``: --tile and --input-range as on detect, the overlay video's frame rate, --resume with
--full-every keeping the full-frame schedule, and torchrun (rank 0 tracks, the others exit) (#34)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from irstd.cli.main import main
from irstd.inference import Predictor, WindowedPredictor
from irstd.inference.records import read_records
from irstd.inference.tracking_run import track_frames

N = 24  # frames of the conftest's ``frames``
FOLDER_FRAMES = 6  # the conftest's ``folder`` holds the first 6 frames


def test_tile_and_input_range_reach_the_predictor(tmp_path: Path, folder: Path, monkeypatch) -> None:
    seen = {}
    real = Predictor.from_checkpoint.__func__

    def spy(cls, spec, **kwargs):
        seen.update(kwargs)
        return real(cls, spec, **kwargs)

    monkeypatch.setattr(Predictor, "from_checkpoint", classmethod(spy))
    out = tmp_path / "out"
    assert main(["track", "tophat", str(folder), "--out", str(out), "--device", "cpu", "--tile", "32",
                 "--tile-overlap", "8", "--input-range", "native"]) == 0
    assert (seen["tile"], seen["tile_overlap"], seen["input_range"]) == (32, 8, "native")
    doc = json.loads((out / "detections.json").read_text())
    assert (doc["tile"], doc["tile_overlap"], doc["input_range"]) == (32, 8, "native")
    # resuming without them: other settings, refused
    assert main(["track", "tophat", str(folder), "--out", str(out), "--device", "cpu", "--resume"]) == 2


def test_tile_options_are_defined_once(capsys) -> None:
    for command in ("detect", "track"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "--tile PIXELS" in text and "--input-range" in text and "--tile-overlap" in text
    with pytest.raises(SystemExit) as exc:
        main(["track", "tophat", "x", "--tile", "0"])
    assert exc.value.code == 2


def test_overlay_video_plays_at_the_source_rate(tmp_path: Path, frames, make_video) -> None:
    av = pytest.importorskip("av")
    video = make_video(tmp_path / "clip.mkv", frames[:6], rate=10)

    def rate(out: Path) -> float:
        (path,) = out.glob("tracks_overlay.*")
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            return float(s.average_rate or s.guessed_rate)

    assert main(["track", "tophat", str(video), "--out", str(tmp_path / "a"), "--device", "cpu", "--overlay"]) == 0
    assert rate(tmp_path / "a") == pytest.approx(10)
    assert main(["track", "tophat", str(video), "--out", str(tmp_path / "b"), "--device", "cpu", "--overlay",
                 "--fps", "5"]) == 0  # given: it wins
    assert rate(tmp_path / "b") == pytest.approx(5)


def test_overlay_rate_without_one_in_the_source(tmp_path: Path, monkeypatch) -> None:
    from irstd.inference import track_overlay

    monkeypatch.setattr(track_overlay, "is_video_file", lambda p: True)
    monkeypatch.setattr(track_overlay, "video_rate", lambda p: None)

    class One:
        files = [tmp_path / "x.raw"]

    assert track_overlay.TrackOverlayWriter(tmp_path, One()).fps == 25
    assert track_overlay.TrackOverlayWriter(tmp_path, One(), fps=12.5).fps == 12.5


def _schedule_run(frames, replay=()):
    """Records and, per frame run here, whether it ran whole, of a windowed track run (full every 4)."""
    wp = WindowedPredictor(Predictor.from_checkpoint("tophat", device="cpu"), full_every=4, window=32)
    records, full = [], []
    for step in track_frames(wp, list(frames), replay_records=replay):
        if not step.replayed:
            full.append(not wp.last_windows)
        records.append(step.record)
    return records, full, wp


def test_resume_keeps_the_full_frame_schedule(frames) -> None:
    """Windows find other targets than the full pass (tophat thresholds at its input's statistics), so the
    records of a resumed run equal an unbroken run's only if the schedule goes on where it stopped."""
    straight, full, wp = _schedule_run(frames)
    assert 0 < wp.window_frames and sum(full) < N  # the schedule has window frames to get wrong
    for n in (2, 5, 10, 17):
        again, full_again, _ = _schedule_run(frames, straight[:n])
        assert full_again == full[n:], n
        assert json.dumps(again) == json.dumps(straight), n


def test_torchrun_rank_0_tracks_the_others_exit(tmp_path: Path, folder: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(["track", "tophat", str(folder), "--out", str(tmp_path / "r1"), "--device", "cpu"]) == 0
    said = capsys.readouterr().out
    assert said.count("\n") == 1 and "rank 1 of 2 has nothing to do" in said and "sequential" in said
    assert not (tmp_path / "r1").exists()
    monkeypatch.setenv("RANK", "0")
    assert main(["track", "tophat", str(folder), "--out", str(tmp_path / "r0"), "--device", "cpu"]) == 0
    assert "rank 0 tracks every frame" in capsys.readouterr().out
    assert [r["frame"] for r in read_records(tmp_path / "r0" / "tracks.jsonl")] == list(range(6))


def test_no_birth_image_reaches_the_tracker() -> None:
    import argparse

    from irstd.cli.track import add_arguments, tracker_params

    p = argparse.ArgumentParser()
    add_arguments(p)
    assert tracker_params(p.parse_args(["m", "src"])).birth_image is True
    assert tracker_params(p.parse_args(["m", "src", "--no-birth-image"])).birth_image is False
