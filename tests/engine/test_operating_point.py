"""The operating point: a threshold chosen on validation data and folded into the logit bias."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from irstd.engine.evaluation import evaluate_checkpoint
from irstd.engine.operating_point import choose_operating_point, fold_operating_point
from irstd.errors import ConfigError
from irstd.models import create_model, fold_threshold, load_model, read_checkpoint

SHIPPED = "sgem_unet_t.synth"  # the cheapest shipped model that detects generated targets


@pytest.mark.parametrize("threshold", [0.05, 0.5, 0.999])
def test_folding_moves_every_logit_by_the_thresholds_logit(threshold: float) -> None:
    torch.manual_seed(0)
    model = create_model("unet", widths=(4, 8, 16)).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        before = model(x)
        offset = fold_threshold(model, threshold)
        after = model(x)
    assert offset == pytest.approx(math.log(threshold / (1 - threshold)))
    torch.testing.assert_close(after, before - offset, rtol=0, atol=1e-5)
    # what was above the threshold is what is now above 0.5 (no logit sits within 1e-5 of the edge here)
    assert torch.equal(torch.sigmoid(after) > 0.5, torch.sigmoid(before) > threshold)


def test_a_model_without_a_logit_layer_is_refused() -> None:
    model = create_model("acm").eval()
    with pytest.raises(ValueError, match="logit_layer"):
        fold_threshold(model, 0.9)
    with pytest.raises(ValueError, match="threshold"):
        fold_threshold(create_model("unet", widths=(4, 8)), 1.0)


def test_the_folded_checkpoint_scores_at_05_what_the_choice_promised(tmp_path: Path) -> None:
    out = tmp_path / "op.safetensors"
    point = fold_operating_point(SHIPPED, out, max_fa=200.0, synthetic_n=6)
    assert point.split.startswith("val") and point.images == 6 and point.fa <= 200.0
    # re-scored at the default threshold on the same validation scenes: the same Pd and Fa
    report = evaluate_checkpoint(str(out), split="val", synthetic_n=6)
    assert round(100 * report.result.pd, 2) == point.pd
    assert round(report.result.fa, 2) == point.fa
    _, meta = read_checkpoint(out)
    assert meta["operating_point"]["threshold"] == point.threshold
    _, src_meta = read_checkpoint(SHIPPED)
    assert meta["config"] == src_meta["config"] and meta["normalization"] == src_meta["normalization"]
    # the bias moved by the chosen logit, nothing else did
    a, b = load_model(SHIPPED).state_dict(), load_model(out).state_dict()
    moved = [k for k in a if not torch.equal(a[k], b[k])]
    assert moved == ["head.bias"]
    torch.testing.assert_close(b["head.bias"], a["head.bias"] - point.logit_offset, rtol=0, atol=1e-6)


def test_a_tighter_false_alarm_limit_gives_a_higher_threshold() -> None:
    model = load_model(SHIPPED)
    loose = choose_operating_point(model, max_fa=1000.0, synthetic_n=6)
    tight = choose_operating_point(model, max_fa=1.0, synthetic_n=6)
    assert tight.threshold >= loose.threshold and tight.fa <= 1.0 and loose.pd >= tight.pd


def test_the_test_split_and_a_bad_limit_are_refused() -> None:
    model = load_model(SHIPPED)
    with pytest.raises(ConfigError, match="test split is refused"):
        choose_operating_point(model, max_fa=50.0, split="test")
    with pytest.raises(ConfigError, match="max_fa must be > 0"):
        choose_operating_point(model, max_fa=0.0)


def test_cli_writes_the_folded_checkpoint(tmp_path: Path) -> None:
    irstd = str(Path(sys.executable).parent / "irstd")
    out = tmp_path / "t-op.safetensors"
    run = subprocess.run([irstd, "operating-point", SHIPPED, "--max-fa", "200", "--scenes", "4", "--out", str(out)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "Pd" in run.stdout and str(out) in run.stdout and out.is_file()
