"""The memory budget per frame (issue 36, item 1): sizes parsed at parse time, frames above the budget run in
tiles that fit or are refused, header bombs refused before decoding, torch's allocation failures cost one frame."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from irstd.cli.main import main
from irstd.data.synthetic import generate_scene
from irstd.inference import Predictor
from irstd.inference.memory_budget import (DEFAULT_CAP, FrameTooLargeError, MemoryBudget, default_budget,
                                           estimate_peak_bytes, memory_size, parse_memory_size)
from irstd.inference.pipeline import detect_frames
from irstd.models import create_model


def jpeg_claiming(width: int, height: int) -> bytes:
    """A few hundred bytes of JPEG whose header (SOF0) claims ``width`` x ``height`` pixels."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 7] = height.to_bytes(2, "big")
    data[sof + 7 : sof + 9] = width.to_bytes(2, "big")
    return bytes(data)


@pytest.fixture(scope="module")
def small_unet() -> torch.nn.Module:
    """A narrow U-Net (no registered factors: the budget takes the unknown model's, the largest) whose
    tiles stitch exactly (tests/test_tiling.py)."""
    torch.manual_seed(0)
    model = create_model("unet", widths=[4, 8, 16, 32, 64]).eval()
    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.mul_(300.0)
    return model


@pytest.mark.parametrize("text,size", [("4G", 4 * 2**30), ("500M", 500 * 2**20), ("1.5GiB", 3 * 2**29),
                                       ("2GB", 2 * 10**9), ("4096", 4096), (" 64 k ", 64 * 2**10)])
def test_sizes_parse(text: str, size: int) -> None:
    assert parse_memory_size(text) == size


@pytest.mark.parametrize("text", ["4X", "-1G", "", "G", "0", "four gigs"])
def test_bad_sizes_are_one_line(text: str) -> None:
    with pytest.raises(ValueError, match="not a memory size") as exc:
        parse_memory_size(text)
    assert "\n" not in str(exc.value)
    assert memory_size("auto") == "auto" and memory_size("none") is None


@pytest.mark.parametrize("command", ["detect", "track"])
def test_max_memory_checked_at_parse_time(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "m", "x.png", "--max-memory", "4X"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--max-memory" in err and "e.g. 4G, 500M" in err


def test_default_budget_is_half_the_available_memory_capped() -> None:
    assert default_budget(available=2 * 2**30) == 2**30
    assert default_budget(available=64 * 2**30) == DEFAULT_CAP
    assert 0 < default_budget() <= DEFAULT_CAP


def test_estimate_grows_with_pixels_and_tiles_bound_it() -> None:
    whole = estimate_peak_bytes(4096, 4096, model="sgem_unet_t", precision="fp32")
    assert whole > 16.7e6 * 400  # ~400 B/px measured for SGEM-UNet-T fp32
    assert estimate_peak_bytes(4096, 4096, model="sgem_unet_t", precision="fast") < whole
    assert estimate_peak_bytes(4096, 4096, model="sgem_unet_t", tile=512) < whole / 5
    assert estimate_peak_bytes(4096, 4096, model="not_a_model") > whole  # unknown: the conservative factor


def test_a_small_budget_tiles_a_512_frame_like_the_whole_frame(small_unet: torch.nn.Module) -> None:
    frame = np.rint(generate_scene(3, size=(512, 512))[0])
    whole = Predictor(small_unet, (100.0, 30.0), device="cpu").probabilities([frame])[0]
    budget = MemoryBudget(0, 0).estimate(512, 512) + 2**20 * 25  # the frame-sized arrays and 25 MiB for tiles
    tiled = Predictor(small_unet, (100.0, 30.0), device="cpu", max_memory=budget)
    plan = tiled._plan(frame)
    assert plan.tile is not None and 64 <= plan.tile < 512 and plan.need <= budget
    assert whole.std() > 0.05
    np.testing.assert_allclose(tiled.probabilities([frame])[0], whole, atol=1e-4)
    # the budget holds tiles to a side the estimate allows; a large budget leaves the frame whole
    assert Predictor(small_unet, (100.0, 30.0), device="cpu", max_memory="4G")._plan(frame).tile is None


def test_a_frame_that_cannot_fit_even_in_tiles_is_that_frames_error(small_unet: torch.nn.Module) -> None:
    p = Predictor(small_unet, (100.0, 30.0), device="cpu", max_memory="4M")
    with pytest.raises(FrameTooLargeError, match="above the memory budget of 4.0 MiB"):
        p.predict(np.zeros((512, 512), np.float32))
    frames = [np.zeros((32, 32), np.float32), np.zeros((512, 512), np.float32), np.zeros((32, 32), np.float32)]
    dets = list(detect_frames(p, frames))
    assert [d.ok for d in dets] == [True, False, True]
    assert dets[1].record["error"].startswith("stream#1: 512x512 pixels need about")


def test_header_bomb_is_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = tmp_path / "bomb.jpg"
    bomb.write_bytes(jpeg_claiming(9000, 9000))
    Image.fromarray(np.full((40, 40), 30, np.uint8)).save(tmp_path / "good.png")
    decoded: list[str] = []
    real_load = ImageFile.ImageFile.load

    def load(im):  # noqa: ANN001, ANN202
        decoded.append(f"{im.width}x{im.height}")
        return real_load(im)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    p = Predictor.from_checkpoint("tophat", device="cpu", max_memory="2G")
    dets = list(detect_frames(p, [str(tmp_path)]))
    assert [(Path(d.record["file"]).name, d.ok) for d in dets] == [("bomb.jpg", False), ("good.png", True)]
    error = dets[0].record["error"]
    assert error.startswith(f"{bomb}: header claims 9000x9000 pixels") and "refused before decoding" in error
    assert "\n" not in error and "9000x9000" not in decoded and "40x40" in decoded  # the bomb is never decoded


def test_detect_command_keeps_every_frame_with_a_header_bomb(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    frames = tmp_path / "in"
    frames.mkdir()
    (frames / "a_bomb.jpg").write_bytes(jpeg_claiming(9000, 9000))
    Image.fromarray(np.rint(generate_scene(1, size=(64, 64))[0]).astype(np.uint8)).save(frames / "b.png")
    out = tmp_path / "out"
    code = main(["detect", "tophat", str(frames), "--out", str(out), "--max-memory", "1G"])
    assert code == 0
    records = json.loads((out / "detections.json").read_text())["frames"]
    assert [Path(r["file"]).name for r in records] == ["a_bomb.jpg", "b.png"]
    assert "memory budget of 1.0 GiB" in records[0]["error"] and "error" not in records[1]
    printed = capsys.readouterr().out
    assert f"skipped {frames / 'a_bomb.jpg'}: header claims 9000x9000" in printed


@pytest.mark.parametrize("message", [
    "could not create a primitive",
    "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to allocate 5.4 GB",
    "CUDA out of memory. Tried to allocate 2.00 GiB",
    "not enough memory: you tried to allocate 21474836480 bytes",
])
@pytest.mark.parametrize("tiled", [False, True])
def test_allocation_failures_in_the_predictor_cost_one_frame(small_unet: torch.nn.Module, message: str,
                                                              tiled: bool) -> None:
    p = Predictor(small_unet, (100.0, 30.0), device="cpu", tile=64 if tiled else None)
    runner, calls = p.runner, []

    def failing(x: torch.Tensor) -> torch.Tensor:
        calls.append(x.shape[-1])
        if x.shape[-1] >= 64 and len(calls) == 2:  # the second large call: frame 1 (or its first tile)
            raise RuntimeError(message + "\nException raised from allocate at c10/core/...")
        return runner(x)

    p.runner = failing
    frames = [np.rint(generate_scene(s, size=(96, 96))[0]) for s in range(3)]
    dets = list(detect_frames(p, frames))
    assert [d.ok for d in dets] == [True, False, True]
    error = dets[1].record["error"]
    assert error.startswith("stream#1: out of memory (") and "--max-memory" in error and "\n" not in error


def test_other_runtime_errors_still_end_the_run(small_unet: torch.nn.Module) -> None:
    p = Predictor(small_unet, (100.0, 30.0), device="cpu")

    def broken(x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("Given groups=1, weight of size [4, 1, 3, 3], expected input to have 1 channels")

    p.runner = broken
    with pytest.raises(RuntimeError, match="expected input"):
        list(detect_frames(p, [np.zeros((32, 32), np.float32)]))


def test_evaluate_refuses_frames_above_the_budget_whole(plain_dataset, capsys: pytest.CaptureFixture) -> None:
    """An evaluation runs whole frames: one that does not fit is named before any scoring, or skipped."""
    from irstd.core.errors import DataError
    from irstd.engine.evaluation import evaluate_checkpoint

    root, names = plain_dataset  # 40x52, 64x64, 37x70, 50x33 frames; tophat: 40 B/px
    with pytest.raises(DataError, match=r"1 frame\(s\) need more than the memory budget") as exc:
        evaluate_checkpoint("tophat", root, max_memory=200_000, batch_size=4)
    assert "f1.png (64x64" in str(exc.value) and "\n" not in str(exc.value)
    report = evaluate_checkpoint("tophat", root, max_memory=200_000, batch_size=4, skip_invalid=True)
    assert [r["name"] for r in report.per_image] == ["f0", "f2", "f3"] and report.n_skipped == 1
    whole = evaluate_checkpoint("tophat", root, max_memory="1G")
    assert len(whole.per_image) == 4 and whole.n_skipped == 0
    with pytest.raises(SystemExit):
        main(["evaluate", "tophat", "--data", str(root), "--max-memory", "lots"])
    assert "--max-memory" in capsys.readouterr().err
