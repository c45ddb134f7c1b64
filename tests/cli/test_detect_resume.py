"""``irstd detect`` interrupted (Ctrl-C) and resumed: every frame once; videos and their frame times."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from irstd.cli.main import main
from irstd.inference import Predictor
from irstd.inference.records import JSONL_NAME, read_records


@pytest.fixture
def seq(tmp_path: Path) -> Path:
    folder = tmp_path / "seq"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 11):
        frame = rng.integers(0, 40, (24, 32), dtype=np.uint8)
        frame[i, 2 * i] = 250
        Image.fromarray(frame).save(folder / f"{i}.png")
    return folder


def _interrupt_after(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """Ctrl-C arrives while the predictor runs frame n + 1."""
    real, calls = Predictor.predict, [0]

    def predict(self, frames):
        calls[0] += 1
        if calls[0] > n:
            raise KeyboardInterrupt
        return real(self, frames)

    monkeypatch.setattr(Predictor, "predict", predict)


def test_interrupt_then_resume_writes_every_frame_once(tmp_path: Path, seq: Path, monkeypatch, capsys) -> None:
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["detect", "tophat", str(seq), "--out", str(full), "--device", "cpu"]) == 0
    with monkeypatch.context() as m:
        _interrupt_after(m, 4)
        assert main(["detect", "tophat", str(seq), "--out", str(part), "--device", "cpu"]) == 130
    said = capsys.readouterr().out
    assert "interrupted: 4 finished frame(s) kept" in said and "--resume" in said
    assert [r["frame"] for r in read_records(part / JSONL_NAME)] == [0, 1, 2, 3]
    assert len(json.loads((part / "detections.json").read_text())["frames"]) == 4  # what was done is kept
    with open(part / JSONL_NAME, "a") as f:
        f.write('{"file": "torn')  # as if killed while writing the fifth record
    assert main(["detect", "tophat", str(seq), "--out", str(part), "--device", "cpu", "--resume"]) == 0
    assert "resuming: 4 frame(s)" in capsys.readouterr().out
    assert [r["frame"] for r in read_records(part / JSONL_NAME)] == list(range(10))
    for name in ("detections.json", "detections.csv", JSONL_NAME):
        assert (part / name).read_bytes() == (full / name).read_bytes(), name
    assert main(["detect", "tophat", str(seq), "--out", str(part), "--device", "cpu", "--resume",
                 "--threshold", "0.3"]) == 2  # other settings: refused in one line
    assert "cannot resume a run made with other settings (threshold 0.5 then, 0.3 now)" in capsys.readouterr().err
    names = [Path(r["file"]).name for r in json.loads((full / "detections.json").read_text())["frames"]]
    assert names == [f"{i}.png" for i in range(1, 11)]


def test_detect_on_a_video_and_a_frame(tmp_path: Path, seq: Path) -> None:
    av = pytest.importorskip("av")
    video = tmp_path / "clip.mkv"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "gray"
        for i in range(1, 4):
            frame = np.asarray(Image.open(seq / f"{i}.png"))
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="gray")))
        container.mux(stream.encode())
    out = tmp_path / "out"
    assert main(["detect", "tophat", str(video), str(seq / "1.png"), "--out", str(out), "--device", "cpu",
                 "--overlay"]) == 0
    frames = json.loads((out / "detections.json").read_text())["frames"]
    assert [(f["file"], f["frame"], f["time"]) for f in frames] == [
        (f"{video}#0", 0, 0.0), (f"{video}#1", 1, 0.04), (f"{video}#2", 2, 0.08), (str(seq / "1.png"), 3, None)]
    assert frames[0]["targets"] == frames[3]["targets"]  # the lossless video's frame 0 is 1.png
    assert sorted(p.name for p in out.glob("*_overlay.png")) == [
        "1_overlay.png", "clip_000000_overlay.png", "clip_000001_overlay.png", "clip_000002_overlay.png"]


def test_killed_run_resumes_from_its_records_alone(tmp_path: Path, seq: Path, monkeypatch, capsys) -> None:
    """A run killed outright (no Ctrl-C handler ran): only the first half of its JSON Lines exist, no
    detections.json. --resume runs the other half only and ends with the files of an uninterrupted run."""
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["detect", "tophat", str(seq), "--out", str(full), "--device", "cpu"]) == 0
    assert main(["detect", "tophat", str(seq), "--out", str(part), "--device", "cpu"]) == 0
    lines = (part / JSONL_NAME).read_bytes().splitlines(keepends=True)
    assert len(lines) >= 10
    records = [line for line in lines if b'"frame"' in line]
    cut = lines.index(records[5])  # keep what precedes the sixth frame's record: frames 0-4 done
    (part / JSONL_NAME).write_bytes(b"".join(lines[:cut]))
    for name in ("detections.json", "detections.csv"):
        (part / name).unlink()
    capsys.readouterr()
    calls = []
    real = Predictor.predict

    def predict(self, frames):
        calls.append(len(frames))
        return real(self, frames)

    monkeypatch.setattr(Predictor, "predict", predict)
    assert main(["detect", "tophat", str(seq), "--out", str(part), "--device", "cpu", "--resume"]) == 0
    assert "resuming: 5 frame(s)" in capsys.readouterr().out
    assert sum(calls) == 5  # the finished frames are not run again
    for name in ("detections.json", "detections.csv", JSONL_NAME):
        assert (part / name).read_bytes() == (full / name).read_bytes(), name
