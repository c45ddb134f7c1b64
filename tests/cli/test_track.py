"""``irstd track`` and ``irstd evaluate-track`` on generated sequences: outputs, MOT CSV, video = folder,
interrupt and resume byte-identical, hints for a windowed predictor, scores on a hand-made run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from irstd.cli.main import main
from irstd.inference import Predictor
from irstd.inference.records import read_records
from irstd.inference.tracking_run import track_frames

N = 24  # frames of the conftest's ``frames``


def test_track_folder_and_video(tmp_path: Path, folder: Path, frames, make_video, capsys) -> None:
    out = tmp_path / "out"
    assert main(["track", "tophat", str(folder), "--out", str(out), "--device", "cpu", "--stream", "--overlay"]) == 0
    said = capsys.readouterr().out
    assert "frame 1: " in said and f"frame {N}: " in said and "confirmed tracks" in said
    for name in ("tracks.jsonl", "tracks_mot.csv", "detections.json", "detections.csv"):
        assert (out / name).is_file(), name
    assert len(list((out / "overlay").glob("*_tracks.png"))) == N
    recs = read_records(out / "tracks.jsonl")
    assert [Path(r["file"]).name for r in recs] == [f"{i}.png" for i in range(1, N + 1)]  # natural order
    for r in recs:
        assert len(r["tracks"]) == len(r["targets"]) and set(r["motion"]) == {"dx", "dy", "cut", "peak"}
    assert [r["frame"] for r in recs if r["motion"]["cut"]] == [16]
    assert any(r["confirmed"] for r in recs)
    rows = list(csv.reader(open(out / "tracks_mot.csv")))
    assert rows and all(len(r) == 10 and r[7:] == ["-1", "-1", "-1"] for r in rows)
    assert all(1 <= int(r[0]) <= N and int(r[1]) >= 1 and float(r[4]) > 0 for r in rows)
    assert [int(r[0]) for r in rows] == sorted(int(r[0]) for r in rows)
    # the same frames as a lossless video: the same tracks
    video = make_video(tmp_path / "seq.mkv", frames)
    vout = tmp_path / "vout"
    assert main(["track", "tophat", str(video), "--out", str(vout), "--device", "cpu", "--overlay"]) == 0
    vrecs = read_records(vout / "tracks.jsonl")
    keys = ("targets", "tracks", "confirmed", "coasting", "motion")
    assert [{k: r[k] for k in keys} for r in vrecs] == [{k: r[k] for k in keys} for r in recs]
    assert (vout / "tracks_mot.csv").read_bytes() == (out / "tracks_mot.csv").read_bytes()
    assert list(vout.glob("tracks_overlay.*"))


def test_track_tiny_checkpoint(tmp_path: Path, folder: Path) -> None:
    from irstd.models import create_model
    from irstd.models.checkpoint import save_checkpoint

    ckpt = tmp_path / "m.safetensors"
    save_checkpoint(ckpt, create_model("unet", widths=(4, 8, 16, 32, 64)), normalization=(128.0, 64.0))
    out = tmp_path / "out"
    assert main(["track", str(ckpt), str(folder), "--out", str(out), "--device", "cpu"]) == 0
    assert len(read_records(out / "tracks.jsonl")) == N
    # the windowed path: the same model, whole frames every 4th frame only; its schedule is in the outputs
    win = tmp_path / "win"
    assert main(["track", str(ckpt), str(folder), "--out", str(win), "--device", "cpu", "--full-every", "4"]) == 0
    assert len(read_records(win / "tracks.jsonl")) == N
    doc = json.loads((win / "detections.json").read_text())
    assert doc["full_every"] == 4 and "full every 4" in doc["precision"]


def test_window_options_are_checked(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["track", "tophat", "x", "--full-every", "0"])
    assert exc.value.code == 2 and "--full-every" in capsys.readouterr().err


def test_interrupt_and_resume_equal_a_straight_run(tmp_path: Path, folder: Path, monkeypatch, capsys) -> None:
    (folder / "6.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")  # an unreadable frame: a miss for every track
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["track", "tophat", str(folder), "--out", str(full), "--device", "cpu"]) == 0
    real, calls = Predictor.predict, [0]

    def predict(self, batch):
        calls[0] += 1
        if calls[0] > 9:  # Ctrl-C while frame 11 (index 10) runs: frames 0..9 done, 5 unreadable
            raise KeyboardInterrupt
        return real(self, batch)

    with monkeypatch.context() as m:
        m.setattr(Predictor, "predict", predict)
        assert main(["track", "tophat", str(folder), "--out", str(part), "--device", "cpu"]) == 130
    assert "interrupted: 10 finished frame(s)" in capsys.readouterr().out
    assert [r["frame"] for r in read_records(part / "tracks.jsonl")] == list(range(10))
    with open(part / "tracks.jsonl", "a") as f:
        f.write('{"file": "torn')  # killed while writing the next record
    assert main(["track", "tophat", str(folder), "--out", str(part), "--device", "cpu", "--resume"]) == 0
    assert "resuming: 10 frame(s)" in capsys.readouterr().out
    for name in ("tracks.jsonl", "tracks_mot.csv", "detections.json", "detections.csv"):
        assert (part / name).read_bytes() == (full / name).read_bytes(), name
    assert main(["track", "tophat", str(folder), "--out", str(part), "--device", "cpu", "--resume",
                 "--gate", "5"]) == 2  # other settings: refused in one line


def test_resume_after_interrupt_in_the_library(frames) -> None:
    """Interrupting after every possible frame and replaying gives the records of an unbroken run."""
    pred = Predictor.from_checkpoint("tophat", device="cpu")
    straight = [s.record for s in track_frames(pred, list(frames))]
    for n in (1, 7, 17):
        again = [s.record for s in track_frames(pred, list(frames), replay_records=straight[:n])]
        assert json.dumps(again) == json.dumps(straight)


def test_hints_before_each_frame(frames) -> None:
    """A predictor with set_hints hears, before each frame, where every live track is expected."""
    inner = Predictor.from_checkpoint("tophat", device="cpu")
    log: list = []

    class Windowed:
        def set_hints(self, points):
            log.append(("hints", list(points)))

        def predict(self, batch):
            log.append(("predict",))
            return inner.predict(batch)

    steps = list(track_frames(Windowed(), list(frames[:8])))
    kinds = [e[0] for e in log]
    assert kinds == ["hints", "predict"] * 8 + ["hints"]
    assert log[0][1] == [] and len(steps) == 8
    assert log[-1][1] and all(len(p) == 2 and isinstance(p[0], float) for p in log[-1][1])


def test_help_lists_track_options(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["track", "--help"])
    text = capsys.readouterr().out
    assert "OFFLINE" in text and "--birth-hits" in text
    with pytest.raises(SystemExit) as exc:
        main(["track", "tophat", "x", "--gate", "-1"])
    assert exc.value.code == 2


def _rec(i: int, targets: list, tracks: list, confirmed: list, coasting: list = ()) -> dict:
    return {"file": f"f{i}.png", "frame": i, "time": None, "height": 100, "width": 100,
            "targets": [{"x": x, "y": y, "area": 4, "bbox": [int(x) - 1, int(y) - 1, int(x) + 1, int(y) + 1],
                         "peak": 0.9} for x, y in targets],
            "tracks": tracks, "confirmed": [{"id": c[0], "x": c[1], "y": c[2], "predicted": c[3],
                                             "score": None if c[3] else 0.9} for c in confirmed],
            "coasting": [list(c) for c in coasting], "motion": {"dx": 0.0, "dy": 0.0, "cut": False, "peak": 1.0}}


def test_evaluate_track_hand_made(tmp_path: Path, capsys) -> None:
    """Target A (track 1) moves 2 px/frame along y = 10, missed in frame 2 (coasting there); clutter B (track 2)
    sits at (50, 50). Raw: A found in 3 of 4 frames, B false in all 4. Online: 1 confirmed from frame 1 on
    (coasting in 2). Offline: frame 0 confirmed too."""
    pytest.importorskip("motmetrics")
    run = tmp_path / "run"
    run.mkdir()
    recs = [_rec(0, [(10, 10), (50, 50)], [1, 2], []),
            _rec(1, [(12, 10), (50, 50)], [1, 2], [(1, 12.0, 10.0, False)]),
            _rec(2, [(50, 50)], [2], [(1, 14.0, 10.0, True)], [(1, 14.0, 10.0)]),
            _rec(3, [(16, 10), (50, 50)], [1, 2], [(1, 16.0, 10.0, False)])]
    (run / "tracks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    labels = tmp_path / "labels.txt"
    labels.write_text("10,10\n10,12\n10,14\n10,16\n")  # row,col
    assert main(["evaluate-track", str(run), "--labels", str(labels)]) == 0
    assert "confirmed (offline)" in capsys.readouterr().out
    s = json.loads((run / "track_eval.json").read_text())
    assert s["raw"]["pd"] == 75.0 and s["raw"]["false_per_frame"] == 1.0 and s["raw"]["frames_with_false"] == 100.0
    assert s["raw"]["false_per_mpx"] == pytest.approx(100.0)  # 1 per frame on 0.01 MPx
    on, off = s["online"], s["offline"]
    assert (on["pd"], on["false_per_frame"], on["frames_with_false"]) == (75.0, 0.0, 0.0)
    assert on["mota"] == pytest.approx(75.0) and on["idf1"] == pytest.approx(600 / 7) and on["num_switches"] == 0
    assert (off["pd"], off["mota"], off["idf1"]) == (100.0, pytest.approx(100.0), pytest.approx(100.0))
    assert s["delays"] == {"raw": [0], "online": [1], "offline": [0]}
    # the MOT CSV of this run: offline, frames from 1, the coast a 3×3 box with conf -1
    from irstd.inference.track_outputs import mot_lines

    assert mot_lines(recs) == ["1,1,9.00,9.00,3,3,0.9000,-1,-1,-1", "2,1,11.00,9.00,3,3,0.9000,-1,-1,-1",
                               "3,1,12.50,8.50,3,3,-1.0000,-1,-1,-1", "4,1,15.00,9.00,3,3,0.9000,-1,-1,-1"]
    labels.write_text("10,10\n")
    assert main(["evaluate-track", str(run), "--labels", str(labels)]) == 2  # one line: labels ≠ frames
