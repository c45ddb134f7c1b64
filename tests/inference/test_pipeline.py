"""detect_frames (the one loop from frames to records) and the JSON Lines records with resume."""

from __future__ import annotations

import csv
import json
import os
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from irstd.core.errors import DataError
from irstd.inference import Prediction, Predictor
from irstd.inference.pipeline import detect_frames
from irstd.inference.records import JSONL_NAME, RecordWriter, finish_detections, read_records
from irstd.inference.targets import Target


class Stub:
    """A predictor that finds one target at the frame's brightest pixel; ``fail`` maps a call number to an
    exception it raises there."""

    def __init__(self, fail: dict[int, BaseException] | None = None) -> None:
        self.calls, self.fail = 0, fail or {}

    def predict(self, frames):
        self.calls += 1
        if self.calls in self.fail:
            raise self.fail[self.calls]
        (frame,) = frames
        frame = np.asarray(frame, dtype=np.float32)
        y, x = np.unravel_index(int(frame.argmax()), frame.shape)
        prob = np.zeros(frame.shape, np.float32)
        return [Prediction(prob, prob > 0.5, [Target(float(x), float(y), 1, (int(x), int(y), int(x), int(y)), 1.0)])]


def _frames(n: int) -> list[np.ndarray]:
    out = []
    for i in range(n):
        f = np.zeros((8, 8), np.uint8)
        f[i % 8, (i * 3) % 8] = 200
        out.append(f)
    return out


def test_records_carry_frame_index_time_and_targets() -> None:
    dets = list(detect_frames(Stub(), _frames(3)))
    assert [d.record["frame"] for d in dets] == [0, 1, 2]
    rec = dets[1].record
    assert list(rec)[:3] == ["file", "frame", "time"] and rec["file"] == "stream#1" and rec["time"] is None
    assert rec["targets"][0]["x"] == 3.0 and rec["targets"][0]["y"] == 1.0
    assert dets[1].frame.index == 1 and dets[1].prediction is not None and dets[1].ok


def test_error_policy_costs_one_frame_each() -> None:
    fail = {2: RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), 3: MemoryError(),
            4: DataError("expected a single-channel (H, W) frame"),
            5: RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")}
    dets = list(detect_frames(Stub(fail), _frames(7)))
    assert [d.ok for d in dets] == [True, False, False, False, False, True, True]
    assert "out of memory" in dets[1].record["error"] and dets[1].record["file"] == "stream#1"
    assert dets[3].record["error"].startswith("stream#3: expected a single-channel")
    assert dets[1].prediction is None and dets[1].frame is not None


def test_other_errors_end_the_run() -> None:
    with pytest.raises(RuntimeError, match="shape mismatch"):
        list(detect_frames(Stub({2: RuntimeError("shape mismatch")}), _frames(3)))


def test_unreadable_file_becomes_its_error_record(tmp_path: Path) -> None:
    for i in range(3):
        Image.fromarray(_frames(3)[i]).save(tmp_path / f"{i}.png")
    (tmp_path / "1.png").write_bytes(b"not a png")
    dets = list(detect_frames(Stub(), tmp_path))
    assert [d.ok for d in dets] == [True, False, True] and "1.png" in dets[1].record["error"]


def test_skip_runs_only_the_rest() -> None:
    stub = Stub()
    dets = list(detect_frames(stub, _frames(6), skip={0, 1, 4}))
    assert [d.record["frame"] for d in dets] == [2, 3, 5] and stub.calls == 3


def test_real_predictor_on_a_source() -> None:
    from irstd.models import create_model

    dets = list(detect_frames(Predictor(create_model("tophat"), device="cpu"), _frames(2)))
    assert [d.record["height"] for d in dets] == [8, 8]


def test_ten_thousand_frames_stream_in_flat_memory(tmp_path: Path) -> None:
    def camera():
        for i in range(10_000):
            yield np.full((32, 32), i % 200, np.uint8)

    tracemalloc.start()
    try:
        with RecordWriter(tmp_path / JSONL_NAME) as writer:
            for det in detect_frames(Stub(), camera()):
                writer.write(det.record)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # the frames alone are 10 MB, their records 2 MB
    assert sum(1 for _ in open(tmp_path / JSONL_NAME)) == 10_000


def test_resume_after_a_torn_line_keeps_every_frame_once(tmp_path: Path) -> None:
    path = tmp_path / JSONL_NAME
    with RecordWriter(path) as writer:
        for det in detect_frames(Stub(), _frames(4)):
            writer.write(det.record)
    with open(path, "a") as f:
        f.write('{"file": "stream#4", "fra')  # killed while writing frame 4
    assert len(read_records(path)) == 4
    with RecordWriter(path, resume=True) as writer:
        assert set(writer.done) == {0, 1, 2, 3}
        for det in detect_frames(Stub(), _frames(7), skip=writer.done):
            writer.write(det.record)
    assert [r["frame"] for r in read_records(path)] == list(range(7))
    _, _, records = finish_detections(tmp_path, checkpoint="stub", threshold=0.5)
    assert [r["frame"] for r in records] == list(range(7))


def test_a_bad_line_inside_the_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / JSONL_NAME
    path.write_text('{"frame": 0}\nnot json\n{"frame": 2}\n')
    with pytest.raises(DataError, match="line 2"):
        read_records(path)


@pytest.mark.skipif(sys.platform != "linux", reason="file names as raw bytes: Linux file systems")
def test_names_of_any_encoding_round_trip(tmp_path: Path) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    raw = os.fsencode(folder) + b"/caf\xe9-\xff.png"  # Latin-1 bytes: not UTF-8
    Image.fromarray(_frames(1)[0]).save(os.fsdecode(raw))
    Image.fromarray(_frames(2)[1]).save(folder / "ünïcode.png")
    with RecordWriter(tmp_path / JSONL_NAME) as writer:
        for det in detect_frames(Stub(), folder):
            writer.write(det.record)
    json_path, csv_path, records = finish_detections(tmp_path, checkpoint="stub", threshold=0.5)
    names = {os.fsencode(r["file"]) for r in json.loads(json_path.read_text())["frames"]}
    assert raw in names and os.fsencode(folder / "ünïcode.png") in names
    (tmp_path / JSONL_NAME).read_text(encoding="ascii")  # escapes only
    with open(csv_path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        rows = list(csv.reader(f))
    assert {os.fsencode(r[0]) for r in rows[1:]} == names
