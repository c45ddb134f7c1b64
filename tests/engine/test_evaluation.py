"""``evaluate`` gives exactly what the metric module gives when fed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from irstd.cli.main import main
from irstd.data.io import save_image, save_mask
from irstd.engine.checkpoint import load_model, save_checkpoint
from irstd.engine.evaluation import evaluate_checkpoint
from irstd.metrics import SegMetrics
from irstd.models import create_model
from irstd.padding import crop_to, pad_to_multiple


def _fixture_dataset(root: Path) -> list[str]:
    """Plain layout with frames of three sizes and bright blobs as targets."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    names = []
    for i, (h, w) in enumerate([(40, 52), (64, 64), (37, 70), (50, 33)]):
        img = rng.normal(100, 10, (h, w))
        mask = np.zeros((h, w), bool)
        y, x = rng.integers(5, h - 5), rng.integers(5, w - 5)
        mask[y - 1 : y + 2, x - 1 : x + 2] = True
        img[mask] += 80
        save_image(root / "images" / f"f{i}.png", np.clip(img, 0, 255))
        save_mask(root / "masks" / f"f{i}.png", mask)
        names.append(f"f{i}")
    (root / "test.txt").write_text("\n".join(names))
    (root / "train.txt").write_text("\n".join(names[:2]))
    return names


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(3)
    model = create_model("unet", widths=(4, 8, 16, 32, 64)).eval()
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, model, normalization=(110.0, 20.0))
    return path


def test_evaluate_matches_metrics_fed_by_hand(tmp_path: Path, checkpoint: Path) -> None:
    root = tmp_path / "data"
    names = _fixture_dataset(root)
    model = load_model(checkpoint)
    report = evaluate_checkpoint(model, root, split="test", device="cpu", batch_size=3)

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


def test_evaluate_cli_writes_reports_masks_and_sweep(tmp_path: Path, checkpoint: Path) -> None:
    root = tmp_path / "data"
    names = _fixture_dataset(root)
    out, masks = tmp_path / "eval", tmp_path / "masks"
    code = main(["evaluate", str(checkpoint), "--data", str(root), "--out", str(out), "--save-masks", str(masks), "--sweep", "--device", "cpu"])
    assert code == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["metrics"]["n_images"] == 4 and report["n_skipped_invalid"] == 0
    assert len(report["sweep"]["thresholds"]) == len(report["sweep"]["pd"]) > 1
    assert "| IoU" in (out / "metrics.md").read_text() or "IoU" in (out / "metrics.md").read_text()
    assert (out / "sweep.png").stat().st_size > 1000
    assert sorted(p.stem for p in masks.iterdir()) == names
