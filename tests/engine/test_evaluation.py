"""``evaluate`` gives exactly what the metric module gives when fed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from irstd.cli.main import main
from irstd.models.checkpoint import load_model
from irstd.engine.evaluation import evaluate_model
from irstd.errors import ConfigError
from irstd.metrics import SegMetrics
from irstd.core.padding import crop_to, pad_to_multiple


def test_evaluate_matches_metrics_fed_by_hand(plain_dataset: tuple[Path, list[str]], checkpoint: Path) -> None:
    root, names = plain_dataset
    model = load_model(checkpoint)
    report = evaluate_model(model, root, split="test", device="cpu", batch_size=3)

    from irstd.data.io import load_image, load_mask

    direct = SegMetrics()
    for name in names:
        img = (load_image(root / "images" / f"{name}.png") - 110.0) / 20.0
        x, size = pad_to_multiple(torch.from_numpy(img.astype(np.float32))[None, None], 16)
        with torch.no_grad():
            logits = crop_to(model(x), size)
        direct.update(logits, torch.from_numpy(load_mask(root / "masks" / f"{name}.png"))[None, None])
    expected = direct.compute().as_dict()
    got = report.result.as_dict()
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key] == pytest.approx(expected[key], nan_ok=True), key
    assert report.result.n_images == 4 and [r["name"] for r in report.per_image] == names


def test_evaluate_cli_writes_reports_masks_and_sweep(
    tmp_path: Path, plain_dataset: tuple[Path, list[str]], checkpoint: Path
) -> None:
    root, names = plain_dataset
    out, masks = tmp_path / "eval", tmp_path / "masks"
    code = main(["evaluate", str(checkpoint), "--data", str(root), "--out", str(out), "--save-masks", str(masks), "--sweep", "--device", "cpu"])
    assert code == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["metrics"]["n_images"] == 4 and report["n_skipped_invalid"] == 0
    assert len(report["sweep"]["thresholds"]) == len(report["sweep"]["pd"]) > 1
    assert "| IoU" in (out / "metrics.md").read_text() or "IoU" in (out / "metrics.md").read_text()
    assert (out / "sweep.png").stat().st_size > 1000
    assert sorted(p.stem for p in masks.iterdir()) == names


def test_evaluate_a_classical_detector_by_name(tmp_path: Path, plain_dataset: tuple[Path, list[str]]) -> None:
    root, names = plain_dataset
    out = tmp_path / "eval"
    assert main(["evaluate", "tophat", "--data", str(root), "--out", str(out), "--device", "cpu"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["model"] == "tophat" and report["metrics"]["n_images"] == len(names)
    assert report["metrics"]["pd"] == 1.0  # bright 3x3 blobs on flat noise: the top-hat finds all four


def test_evaluate_in_the_fast_mode(plain_dataset: tuple[Path, list[str]], checkpoint: Path) -> None:
    root, _ = plain_dataset
    model = load_model(checkpoint)
    with torch.no_grad():
        model.head.weight.mul_(100.0)  # confident logits: few pixels near the threshold, where bf16 may flip them
    ref = evaluate_model(model, root, device="cpu")
    fast = evaluate_model(model, root, device="cpu", precision="fast", amp="bf16")
    assert ref.precision == "fp32 eager" and fast.precision.startswith("fast (bfloat16")
    assert fast.result.n_images == ref.result.n_images == 4
    for r, f in zip(ref.per_image, fast.per_image):
        assert f["iou"] == pytest.approx(r["iou"], abs=0.02), r["name"]
    assert fast.as_dict()["precision"] == fast.precision
    assert any(type(m) is torch.nn.BatchNorm2d for m in model.modules())  # the fast mode folded a copy
    with pytest.raises(ConfigError, match="precision"):
        evaluate_model(model, root, device="cpu", precision="int8")


def test_evaluate_cli_fast_mode(tmp_path: Path, plain_dataset: tuple[Path, list[str]], checkpoint: Path) -> None:
    root, _ = plain_dataset
    out = tmp_path / "eval-fast"
    assert main(["evaluate", str(checkpoint), "--data", str(root), "--out", str(out), "--device", "cpu",
                 "--precision", "fast"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["precision"].startswith("fast (") and report["metrics"]["n_images"] == 4
    assert "run fast (" in (out / "metrics.md").read_text()


def test_synthetic_evaluation_scores_the_split_asked_for(checkpoint: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    # without --data the generator's streams are the splits: --split val must not quietly score the test scenes
    model = load_model(checkpoint)
    test = evaluate_model(model, None, split="test", synthetic_n=2, device="cpu")
    val = evaluate_model(model, None, split="val", synthetic_n=2, device="cpu")
    assert test.split == "test (seed 0)" and val.split == "val (seed 0)"
    assert [r["name"] for r in test.per_image] != [r["name"] for r in val.per_image]
    assert main(["evaluate", str(checkpoint), "--split-file", "list.txt", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "list.txt: a split file needs --data" in err[0]
