"""``irstd detect`` on a folder of mixed sizes, modes and bit depths, with one corrupt file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from irstd.cli.main import main
from irstd.models.checkpoint import save_checkpoint
from irstd.inference import Predictor, extract_targets
from irstd.models import create_model


@pytest.fixture
def frames(tmp_path: Path) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 50), dtype=np.uint8)).save(folder / "a_gray.png")
    Image.fromarray(rng.integers(0, 255, (33, 47, 3), dtype=np.uint8)).save(folder / "b_rgb.png")
    Image.fromarray(rng.integers(0, 255, (20, 30), dtype=np.uint8)).convert("P").save(folder / "c_palette.bmp")
    Image.fromarray(rng.integers(1000, 60000, (64, 64)).astype(np.uint16)).save(folder / "d_16bit.png")
    (folder / "e_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_detect_folder(tmp_path: Path, frames: Path) -> None:
    model = create_model("unet", widths=(4, 8, 16, 32, 64))
    ckpt = tmp_path / "m.safetensors"
    save_checkpoint(ckpt, model, normalization=(128.0, 64.0))
    out = tmp_path / "out"
    code = main(["detect", str(ckpt), str(frames), "--out", str(out), "--overlay", "--prob-maps", "--device", "cpu"])
    assert code == 0
    report = json.loads((out / "detections.json").read_text())
    files = [Path(f["file"]).name for f in report["frames"]]
    assert files == ["a_gray.png", "b_rgb.png", "c_palette.bmp", "d_16bit.png", "e_corrupt.png"]
    bad = report["frames"][-1]
    assert "error" in bad and "e_corrupt.png" in bad["error"]
    sizes = {Path(f["file"]).name: (f["height"], f["width"]) for f in report["frames"][:4]}
    assert sizes == {"a_gray.png": (40, 50), "b_rgb.png": (33, 47), "c_palette.bmp": (20, 30), "d_16bit.png": (64, 64)}
    for frame in report["frames"][:4]:
        for t in frame["targets"]:
            assert set(t) == {"x", "y", "area", "bbox", "peak"}
    with open(out / "detections.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["file", "target", "x", "y", "area", "x0", "y0", "x1", "y1", "peak"]
    assert len(rows) - 1 == sum(len(f.get("targets", [])) for f in report["frames"])
    for stem in ("a_gray", "b_rgb", "c_palette", "d_16bit"):
        assert Image.open(out / f"{stem}_overlay.png").mode == "RGB"
        prob = np.asarray(Image.open(out / f"{stem}_prob.png"))
        assert prob.shape == sizes[f"{stem}.png" if stem != "c_palette" else "c_palette.bmp"]


def test_detect_glob_and_missing_input(tmp_path: Path, frames: Path) -> None:
    model = create_model("unet", widths=(4, 8, 16, 32, 64))
    ckpt = tmp_path / "m.safetensors"
    save_checkpoint(ckpt, model, normalization=(128.0, 64.0))
    out = tmp_path / "out"
    assert main(["detect", str(ckpt), str(frames / "*_gray.png"), "--out", str(out), "--device", "cpu"]) == 0
    assert len(json.loads((out / "detections.json").read_text())["frames"]) == 1
    assert main(["detect", str(ckpt), str(tmp_path / "missing.png"), "--out", str(out)]) == 2


def test_extract_targets_on_hand_made_map() -> None:
    prob = np.zeros((20, 30), np.float32)
    prob[2:5, 3:6] = 0.9  # 3x3 blob, centroid (x=4, y=3)
    prob[10, 20] = 0.7  # single pixel
    prob[15:17, 25] = 0.6  # 2 px vertical
    targets = extract_targets(prob, prob > 0.5)
    assert [(t.x, t.y, t.area) for t in targets] == [(4.0, 3.0, 9), (20.0, 10.0, 1), (25.0, 15.5, 2)]
    assert targets[0].bbox == (3, 2, 5, 4) and targets[0].peak == pytest.approx(0.9)


def test_predictor_batches_mixed_sizes_and_crops_back() -> None:
    model = create_model("unet", widths=(4, 8, 16, 32, 64))
    pred = Predictor(model, normalization=(0.0, 1.0), device="cpu", batch_size=2)
    frames = [np.random.rand(20, 30), np.random.rand(20, 30), np.random.rand(17, 40), np.random.rand(20, 30)]
    single = [pred.probabilities([f])[0] for f in frames]
    batched = pred.probabilities(frames)
    for a, b, f in zip(single, batched, frames):
        assert a.shape == f.shape
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_detect_fast_precision_runs(tmp_path: Path, frames: Path) -> None:
    model = create_model("unet", widths=(4, 8, 16, 32, 64))
    ckpt = tmp_path / "m.safetensors"
    save_checkpoint(ckpt, model, normalization=(128.0, 64.0))
    out = tmp_path / "out"
    assert main(["detect", str(ckpt), str(frames / "a_gray.png"), "--out", str(out), "--precision", "fast", "--device", "cpu"]) == 0
    assert json.loads((out / "detections.json").read_text())["frames"][0]["height"] == 40


def test_skipped_lines_name_the_file_once(tmp_path: Path, frames: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert main(["detect", "tophat", str(frames), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    (line,) = [x for x in (printed.out + printed.err).splitlines() if x.startswith("skipped ")]
    assert line.count("e_corrupt.png") == 1, line
    from irstd.cli._common import skip_line

    assert skip_line("a/x.tif#3", "a/x.tif: page 3 is truncated") == "skipped a/x.tif#3: page 3 is truncated"
    assert skip_line("a.png", "cannot decode") == "skipped a.png: cannot decode"
