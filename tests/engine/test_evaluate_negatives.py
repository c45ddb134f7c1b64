"""``irstd evaluate --negatives``: false alarms on target-free frames equal a direct count."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from irstd.cli.main import main
from irstd.core.padding import crop_to, pad_to_multiple
from irstd.data.io import load_image, save_image
from irstd.engine.evaluation import evaluate_model
from irstd.models.checkpoint import load_model

STEMS = ["S4-1", "S6-2", "TH_1", "TH_2"]  # S4 is a training group; S6 and TH are held out


@pytest.fixture
def negatives(tmp_path: Path) -> Path:
    root = tmp_path / "bg"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for stem, (h, w) in zip(STEMS, [(40, 52), (64, 64), (37, 70), (50, 33)]):
        save_image(root / "images" / f"{stem}.png", np.clip(rng.normal(110, 25, (h, w)), 0, 255))
    return root


def _direct(checkpoint: Path, root: Path, stem: str, threshold: float) -> tuple[int, int, int]:
    """(pixels, predicted pixels, 8-connected components) of one frame, by hand."""
    model = load_model(checkpoint)
    img = (load_image(root / "images" / f"{stem}.png") - 110.0) / 20.0
    x, size = pad_to_multiple(torch.from_numpy(img.astype(np.float32))[None, None], 16)
    with torch.no_grad():
        prob = torch.sigmoid(crop_to(model(x), size))[0, 0].numpy()
    pred = prob > threshold
    return pred.size, int(pred.sum()), ndimage.label(pred, structure=np.ones((3, 3)))[1]


def _threshold(checkpoint: Path, root: Path) -> float:
    """A threshold inside the untrained model's outputs, so the frames hold many false targets."""
    model = load_model(checkpoint)
    img = (load_image(root / "images" / f"{STEMS[1]}.png") - 110.0) / 20.0
    with torch.no_grad():
        prob = torch.sigmoid(model(torch.from_numpy(img.astype(np.float32))[None, None]))
    return float(np.quantile(prob.numpy(), 0.9))


def test_cli_negatives_alone_matches_a_direct_count(tmp_path: Path, checkpoint: Path, negatives: Path) -> None:
    t = _threshold(checkpoint, negatives)
    out = tmp_path / "eval"
    code = main(["evaluate", str(checkpoint), "--negatives", str(negatives), "--threshold", str(t),
                 "--out", str(out), "--device", "cpu"])
    assert code == 0
    rep = json.loads((out / "negatives.json").read_text())
    assert [r["name"] for r in rep["frames"]] == ["S6-2", "TH_1", "TH_2"]  # heldout by default
    expected = {s: _direct(checkpoint, negatives, s, t) for s in ["S6-2", "TH_1", "TH_2"]}
    for r in rep["frames"]:
        assert (r["n_pixels"], r["fa_pixels"], r["false_targets"]) == expected[r["name"]]
    n_pix = sum(e[0] for e in expected.values())
    ft = sum(e[2] for e in expected.values())
    assert ft > 0
    assert rep["totals"]["false_targets"] == ft
    assert rep["totals"]["false_targets_per_mp"] == pytest.approx(ft / n_pix * 1e6)
    assert rep["totals"]["fa"] == pytest.approx(sum(e[1] for e in expected.values()) / n_pix * 1e6)
    assert set(rep["groups"]) == {"S6", "TH"}
    assert rep["worst"][0]["false_targets"] == max(e[2] for e in expected.values())
    assert "Worst frames" in (out / "negatives.md").read_text()
    assert (out / "negatives.csv").read_text().count("\n") == 4
    assert (out / "negatives_worst.png").stat().st_size > 1000
    assert json.loads((out / "metrics.json").read_text())["metrics"] is None


def test_negatives_split_all_and_bad_folder(tmp_path: Path, checkpoint: Path, negatives: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval"
    assert main(["evaluate", str(checkpoint), "--negatives", str(negatives), "--negatives-split", "all",
                 "--out", str(out), "--device", "cpu"]) == 0
    assert len(json.loads((out / "negatives.json").read_text())["frames"]) == 4
    (negatives / "masks").mkdir()
    assert main(["evaluate", str(checkpoint), "--negatives", str(negatives), "--out", str(out), "--device", "cpu"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("irstd evaluate: error:") and "has no masks" in err[0]


def test_sweep_with_negatives_reports_pd_at_false_target_level(
    plain_dataset: tuple[Path, list[str]], checkpoint: Path, negatives: Path
) -> None:
    root, _ = plain_dataset
    report = evaluate_model(load_model(checkpoint), root, device="cpu", sweep=True, negatives=negatives)
    sw, neg = report.sweep, report.negatives
    assert sw is not None and neg is not None
    ft = neg.false_targets_per_mp_grid()
    assert ft is not None and ft.shape == sw.thresholds.shape
    assert ft[-1] == 0.0  # threshold 1: nothing predicted
    ops = report.operating_points()
    assert set(ops) == {"fa<=1e-6", "fa<=10e-6", "false_targets_per_mp<=0.1"}
    ok = ft <= 0.1
    assert ops["false_targets_per_mp<=0.1"]["pd"] == pytest.approx(np.nanmax(sw.pd[ok]), nan_ok=True)
    assert 0.0 <= report.pixel_ap <= 1.0 and 0.0 <= report.pixel_roc_auc <= 1.0
    md = report.to_markdown()
    assert "Pixel AP" in md and "false_targets_per_mp<=0.1" in md and "Negatives:" in md
