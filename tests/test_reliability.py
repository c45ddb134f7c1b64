"""Hostile inputs and faults: bad frames cost only their own result, training survives kill -9 and a
full disk, and nothing draws progress bars into a log."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from irstd.cli.main import main
from irstd.data.io import load_image, save_image
from irstd.engine import fit, read_checkpoint
from irstd.engine.config import TrainConfig
from irstd.errors import CheckpointError, DataError
from irstd.models import create_model, load_model, save_checkpoint

SRC = Path(__file__).resolve().parents[1] / "src"
TINY = {"widths": [4, 8, 16, 32, 64]}


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming ``width`` x ``height`` grey pixels, with almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.fixture
def hostile_folder(tmp_path: Path) -> tuple[Path, list[str], list[str]]:
    """Three good frames among a decompression bomb, a truncated, an empty and a fake PNG."""
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    good = []
    for i in range(3):
        img = rng.normal(80, 5, (48, 64))
        img[20:23, 30:33] = 250
        save_image(folder / f"good{i}.png", img)
        good.append(f"good{i}.png")
    (folder / "bomb.png").write_bytes(png_header_only(60000, 60000))
    (folder / "truncated.png").write_bytes((folder / "good0.png").read_bytes()[:60])
    (folder / "empty.png").write_bytes(b"")
    (folder / "fake.png").write_text("not an image")
    return folder, good, ["bomb.png", "truncated.png", "empty.png", "fake.png"]


def test_bomb_is_a_per_file_error(tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(png_header_only(60000, 60000))
    with pytest.raises(DataError, match="bomb.png.*pixels"):
        load_image(tmp_path / "bomb.png")
    (tmp_path / "big.png").write_bytes(png_header_only(300, 200))
    with pytest.raises(DataError, match=r"big.png: header claims 300x200 = 60,000 pixels, above the limit of 1,000"):
        load_image(tmp_path / "big.png", max_pixels=1000)


def test_detect_keeps_the_good_frames(hostile_folder, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder, good, bad = hostile_folder
    out = tmp_path / "out"
    assert main(["detect", "tophat", str(folder), "--out", str(out)]) == 0
    doc = json.loads((out / "detections.json").read_text())
    records = {Path(r["file"]).name: r for r in doc["frames"]}
    assert sorted(records) == sorted(good + bad)
    for name in good:
        assert "error" not in records[name] and records[name]["targets"], name
    for name in bad:
        assert name in records[name]["error"], records[name]
    printed = capsys.readouterr()
    assert "Traceback" not in printed.out + printed.err


def test_detect_pixel_limit_option(hostile_folder, tmp_path: Path) -> None:
    folder, good, _ = hostile_folder
    out = tmp_path / "out"
    assert main(["detect", "tophat", str(folder / good[0]), "--out", str(out), "--max-pixels", "100"]) == 1
    doc = (out / "detections.json").read_text()
    assert "above the limit of 100" in doc


def _cfg(tmp_path: Path, name: str, epochs: int = 3) -> TrainConfig:
    return TrainConfig(model="unet", model_kwargs=dict(TINY), epochs=epochs, batch_size=4, crop_size=32,
                       target_crop_prob=1.0, synthetic_train=16, synthetic_val=2, lr=1e-2, scheduler="constant",
                       out=str(tmp_path), name=name, progress=False, eval_batch_size=2, threads=1)


def _train_argv(cfg: TrainConfig) -> list[str]:
    sets = {k: v for k, v in cfg.to_dict().items() if k in (
        "model", "epochs", "batch_size", "crop_size", "target_crop_prob", "synthetic_train", "synthetic_val",
        "lr", "scheduler", "out", "name", "progress", "eval_batch_size", "threads")}
    argv = [sys.executable, "-m", "irstd.cli.main", "train", "--set", f"model_kwargs={json.dumps(TINY)}"]
    for k, v in sets.items():
        argv += ["--set", f"{k}={v}"]
    return argv


def _same_weights(a: Path, b: Path) -> None:
    wa, _ = read_checkpoint(a)
    wb, _ = read_checkpoint(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=0, msg=key)


def test_kill_9_mid_epoch_leaves_a_loadable_last_and_an_exact_resume(tmp_path: Path) -> None:
    # 12 short epochs: on a fast CPU 4 could all finish in the 0.3 s before the kill
    cfg = _cfg(tmp_path, "killed", epochs=12)
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_train_argv(cfg), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    last = tmp_path / "killed" / "last.safetensors"
    deadline = time.monotonic() + 300
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # into the next epoch (or one of its writes)
    finished_early = proc.poll() is not None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists(), proc.stdout.read().decode()[-2000:]
    assert not finished_early, "training ended before it could be killed: make the run longer"
    load_model(last)  # loadable whatever moment the kill hit
    assert main(["train", "--resume", str(tmp_path / "killed"), "--set", "threads=1"]) == 0
    # no temporary file of the killed write survives the next start, and the set is one epoch's
    assert [p.name for p in last.parent.iterdir() if p.name.startswith(".")] == []
    assert _epochs_of_set(last.parent) == (12, 12, 12)
    straight = fit(_cfg(tmp_path, "straight", epochs=12))
    _same_weights(straight.last_path, last)


def test_full_disk_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg(tmp_path, "full", epochs=1)
    fit(cfg)
    run = tmp_path / "full"
    before = {p.name: p.read_bytes() for p in run.iterdir()}

    def disk_full(state, path, metadata=None):  # writes part of the file, then the disk is full
        Path(path).write_bytes(b"\0" * 100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("irstd.models.checkpoint.save_file", disk_full)
    with pytest.raises(CheckpointError, match=r"last.safetensors after epoch 2 \(No space left on device\).*--resume"):
        fit(dataclasses.replace(cfg, epochs=2), resume=run)
    after = {p.name: p.read_bytes() for p in run.iterdir()}
    assert after == before  # same files, same bytes, no temporary left behind
    monkeypatch.undo()
    resumed = fit(dataclasses.replace(cfg, epochs=2), resume=run)  # space freed: the run continues
    assert [r["epoch"] for r in resumed.history] == [1, 2]


def test_future_format_and_foreign_weights_fail_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = create_model("unet", **TINY)
    good = tmp_path / "good.safetensors"
    save_checkpoint(good, model, normalization=(100.0, 30.0))
    _, meta = read_checkpoint(good)
    weights = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(tmp_path / "future.safetensors"), metadata={"irstd": json.dumps({**meta, "format_version": 99})})
    foreign = {**meta, "model_kwargs": {"widths": [8, 16, 32, 64, 128]}}
    save_file(weights, str(tmp_path / "foreign.safetensors"), metadata={"irstd": json.dumps(foreign)})
    (tmp_path / "garbled.safetensors").write_bytes(good.read_bytes()[:200])
    frame = tmp_path / "f.png"
    save_image(frame, np.full((32, 32), 100.0))
    for name, message in (("future", "format 99 is newer"), ("foreign", "weights do not fit model 'unet'"),
                          ("garbled", "not a readable safetensors checkpoint")):
        assert main(["detect", str(tmp_path / f"{name}.safetensors"), str(frame), "--out", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_resume_with_another_model_fails_in_one_line(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "r", epochs=1)
    fit(cfg)
    other = dataclasses.replace(cfg, epochs=2, model_kwargs={"widths": [8, 16, 32, 64, 128]})
    with pytest.raises(CheckpointError, match="do not fit model 'unet'"):
        fit(other, resume=tmp_path / "r")


def test_no_progress_bars_when_output_is_a_pipe(tmp_path: Path, plain_dataset) -> None:
    """Every command run with its output to a pipe (a CI or service log) prints no bar redraws."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        save_image(frames / f"f{i}.png", np.full((32, 32), 50.0 + i))
    runs = [
        ["detect", "tophat", str(frames), "--out", str(tmp_path / "det")],
        ["evaluate", "tophat", "--data", str(plain_dataset[0]), "--out", str(tmp_path / "eval")],
        ["demo", "--train", "--model", "unet", "--epochs", "1", "--scenes", "8", "--test-scenes", "3", "--out", str(tmp_path / "demo"),
         "--threads", "1"],
        ["bench", "--models", "tophat", "--modes", "fp32", "--sizes", "64", "--batch-sizes", "1", "--runs", "2",
         "--warmup", "0", "--out", str(tmp_path / "bench")],
    ]
    script = ("import sys; from irstd.cli.main import main\n"
              f"for argv in {runs!r}:\n    print('== exit', main(argv), flush=True)\n")
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    train = subprocess.run(_train_argv(_cfg(tmp_path, "t", epochs=1)) + ["--set", "progress=true"], env=env,
                           capture_output=True, text=True, timeout=600)
    others = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    for done in (train, others):
        text = done.stdout + done.stderr
        assert "Traceback" not in text, text[-3000:]
        assert "\r" not in text and "it/s]" not in text and "%|" not in text, text[-3000:]
    assert others.stdout.count("== exit 0") == len(runs), others.stdout[-3000:] + others.stderr[-3000:]


def _folder_bytes(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run.iterdir()}


def _epochs_of_set(run: Path) -> tuple[int, int, int]:
    """(epoch of last.safetensors, of last.state.pt, rows of log.jsonl): one epoch when the set is whole."""
    _, meta = read_checkpoint(run / "last.safetensors")
    state = torch.load(run / "last.state.pt", map_location="cpu", weights_only=False)
    rows = (run / "log.jsonl").read_text().splitlines()
    return meta["epoch"], state["epoch"], len(rows)


def test_torch_save_failing_on_a_full_disk_keeps_the_whole_previous_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture) -> None:
    """torch.save reports a full disk as RuntimeError: one line, and last.safetensors of the failed epoch
    must not stand beside the state and logs of the one before."""
    cfg = _cfg(tmp_path, "torchfull", epochs=1)
    fit(cfg)
    run = tmp_path / "torchfull"
    before = _folder_bytes(run)

    def disk_full(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"PK\0" * 50)
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file "
                           "data/3: file write failed")

    monkeypatch.setattr("irstd.engine.resume.torch.save", disk_full)
    with pytest.raises(CheckpointError, match=r"last.state.pt after epoch 2 \(.*file write failed\).*--resume"):
        fit(dataclasses.replace(cfg, epochs=2), resume=run)
    assert _folder_bytes(run) == before
    assert main(["train", "--resume", str(run), "--set", "epochs=2", "--set", "threads=1"]) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "last.state.pt after epoch 2" in err and len(err.strip().splitlines()) == 1, err
    assert _folder_bytes(run) == before
    monkeypatch.undo()
    assert _epochs_of_set(run) == (1, 1, 1)
    resumed = fit(dataclasses.replace(cfg, epochs=2), resume=run)
    assert [r["epoch"] for r in resumed.history] == [1, 2] and _epochs_of_set(run) == (2, 2, 2)


def test_read_only_folder_is_not_told_to_free_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import tempfile

    cfg = _cfg(tmp_path, "ro", epochs=1)
    fit(cfg)
    run = tmp_path / "ro"
    before = _folder_bytes(run)
    real = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):  # noqa: A002 — tempfile's own keyword
        if dir is not None and Path(dir) == run:
            raise OSError(errno.EROFS, "Read-only file system", str(Path(dir) / "x"))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(CheckpointError) as caught:
        fit(dataclasses.replace(cfg, epochs=2), resume=run)
    message = str(caught.value)
    assert "Read-only file system" in message and "free the space" not in message and "writable" in message, message
    assert "last.safetensors" in message
    assert _folder_bytes(run) == before


def test_kill_during_the_renames_is_finished_on_the_next_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill after the journal is written and one file renamed: the next start completes the set."""
    from irstd.core import files as files_mod

    cfg = _cfg(tmp_path, "cut", epochs=1)
    fit(cfg)
    run = tmp_path / "cut"
    real_replace = os.replace
    renamed: list[str] = []

    def killed_after_one(src, dst):
        into_set = Path(dst).parent == run and not Path(dst).name.startswith(".")
        if into_set and renamed:
            raise KeyboardInterrupt  # stands for the kill: nothing after this point runs
        real_replace(src, dst)
        if into_set:
            renamed.append(str(dst))

    monkeypatch.setattr(files_mod.os, "replace", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        fit(dataclasses.replace(cfg, epochs=2), resume=run)
    monkeypatch.undo()
    assert (run / ".epoch-commit.json").exists()
    assert _epochs_of_set(run) == (2, 1, 1)  # mixed until the folder is reopened
    (run / ".last.safetensors.stale1").write_bytes(b"x")  # what a kill inside atomic_write leaves
    (run / ".last.state.pt.abc123.tmp").write_bytes(b"x")
    resumed = fit(dataclasses.replace(cfg, epochs=3), resume=run)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert _epochs_of_set(run) == (3, 3, 3)
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []


def test_libtiff_messages_go_to_the_debug_log_not_to_stderr(tmp_path: Path) -> None:
    """libtiff writes its own errors to fd 2 unless handled: a damaged deflate TIFF is one error, no C line."""
    from PIL import Image, features

    if not features.check("libtiff"):
        pytest.skip("PIL built without libtiff")
    good = tmp_path / "z.tif"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(
        good, compression="tiff_adobe_deflate")
    with Image.open(good) as im:
        offset, count = im.tag_v2[273][0], im.tag_v2[279][0]
    raw = bytearray(good.read_bytes())
    for i in range(offset + 2, offset + count - 2):
        raw[i] = (raw[i] * 7 + 3) & 255  # the deflate stream no longer inflates
    bad = tmp_path / "bad.tif"
    bad.write_bytes(bytes(raw))
    script = ("import logging, sys\n"
              "logging.basicConfig(level=logging.DEBUG if sys.argv[2] == 'debug' else logging.INFO, stream=sys.stdout,"
              " format='LOG %(message)s')\n"
              "from irstd.data.io import load_image\n"
              "try:\n    load_image(sys.argv[1])\nexcept Exception as exc:\n    print('ERROR', exc)\n")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    for level in ("info", "debug"):
        done = subprocess.run([sys.executable, "-c", script, str(bad), level], capture_output=True, text=True,
                              env=env, timeout=120)
        assert done.stderr == "", done.stderr
        assert f"ERROR {bad}: cannot decode pixels" in done.stdout
        assert ("Decoding error" in done.stdout) == (level == "debug"), done.stdout[-2000:]
