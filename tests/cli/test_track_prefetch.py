"""Decoding ahead (``prefetch``) changes no output: the records of ``track_frames`` and ``detect_frames``
are the same with the reader thread as without, on a folder with an unreadable frame and on a video."""

from __future__ import annotations

import json
from pathlib import Path

from irstd.inference import Predictor
from irstd.inference.pipeline import detect_frames
from irstd.inference.tracking_run import track_frames


def _track(source, prefetch: int) -> list[str]:
    pred = Predictor.from_checkpoint("tophat", device="cpu")
    return [json.dumps(s.record) for s in track_frames(pred, source, prefetch=prefetch)]


def test_track_records_equal_with_and_without_prefetch(folder: Path) -> None:
    (folder / "6.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")  # an unreadable frame: one error record
    off = _track(str(folder), 0)
    assert sum('"error"' in r for r in off) == 1 and len(off) == 24
    for depth in (1, 2, 5):
        assert _track(str(folder), depth) == off, depth


def test_resume_equal_with_prefetch(folder: Path) -> None:
    pred = Predictor.from_checkpoint("tophat", device="cpu")
    straight = [s.record for s in track_frames(pred, str(folder), prefetch=0)]
    again = [s.record for s in track_frames(pred, str(folder), replay_records=straight[:7], prefetch=2)]
    assert json.dumps(again) == json.dumps(straight)


def test_detect_records_equal_with_and_without_prefetch(tmp_path: Path, folder: Path, frames, make_video) -> None:
    video = make_video(tmp_path / "seq.mkv", frames[:10])
    pred = Predictor.from_checkpoint("tophat", device="cpu")
    for source in ([str(folder)], [str(video), str(folder)]):
        off = [json.dumps(d.record) for d in detect_frames(pred, source, prefetch=0)]
        assert [json.dumps(d.record) for d in detect_frames(pred, source, prefetch=2)] == off
        assert [json.dumps(d.record) for d in detect_frames(pred, source, skip={0, 3, 4}, prefetch=2)] == [
            r for i, r in enumerate(off) if i not in {0, 3, 4}]
