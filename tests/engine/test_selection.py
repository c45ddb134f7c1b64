"""Choosing the best epoch: the select rules on a hand-made log, and the trainer selecting on the
moving average with the starting weights as epoch 0 (resumed exactly)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from irstd.engine import fit, read_checkpoint
from irstd.engine.config import TrainConfig
from irstd.engine.selection import improves, select_epoch
from irstd.errors import ConfigError

#: a fine-tuning log: the start finds every target; later epochs trade targets for IoU
LOG = [
    {"epoch": 0, "val_iou": 0.640, "val_pd": 1.00},
    {"epoch": 1, "loss": 0.2},  # not validated
    {"epoch": 2, "val_iou": 0.655, "val_pd": 0.96},  # higher IoU, one target lost
    {"epoch": 4, "val_iou": 0.630, "val_pd": 1.00},
    {"epoch": 6, "val_iou": 0.648, "val_pd": 1.00},  # the rule's pick: all targets, IoU above the start
    {"epoch": 8, "val_iou": 0.700, "val_pd": 0.92},
    {"epoch": 10, "val_iou": 0.648, "val_pd": 1.00},  # a tie keeps the earlier epoch
    {"epoch": 12, "val_iou": float("nan"), "val_pd": 1.00},
]


def test_iou_picks_the_highest_iou_whatever_it_loses() -> None:
    assert select_epoch(LOG, "iou")["epoch"] == 8


def test_pd_then_iou_keeps_every_target_and_then_the_highest_iou() -> None:
    assert select_epoch(LOG, "pd_then_iou")["epoch"] == 6
    # without epoch 6 and 10 nothing beats the start: it stays the pick
    assert select_epoch([r for r in LOG if r["epoch"] not in (6, 10)], "pd_then_iou")["epoch"] == 0
    # a higher Pd wins over a higher IoU
    assert improves({"val_iou": 0.5, "val_pd": 0.9}, {"val_iou": 0.7, "val_pd": 0.8}, "pd_then_iou")
    assert not improves({"val_iou": 0.5, "val_pd": 0.9}, {"val_iou": 0.7, "val_pd": 0.8}, "iou")


def test_unvalidated_rows_never_win() -> None:
    assert select_epoch([{"epoch": 1, "loss": 1.0}], "iou") is None
    assert not improves({"val_iou": float("nan"), "val_pd": 1.0}, {}, "pd_then_iou")


def test_select_on_ema_needs_a_moving_average(tiny_cfg: TrainConfig) -> None:
    with pytest.raises(ConfigError, match="ema_decay"):
        dataclasses.replace(tiny_cfg).update({"select_weights": "ema"})
    with pytest.raises(ConfigError, match="select_metric"):
        dataclasses.replace(tiny_cfg).update({"select_metric": "pd"})
    dataclasses.replace(tiny_cfg).update({"ema_decay": 0.9, "select_weights": "ema"})


def _ema_cfg(tiny_cfg: TrainConfig, **kw: object) -> TrainConfig:
    values: dict[str, object] = {"epochs": 3, "ema_decay": 0.5, "select_weights": "ema",
                                 "select_metric": "pd_then_iou", "validate_start": True, **kw}
    return dataclasses.replace(tiny_cfg, **values)  # type: ignore[arg-type]


def test_selecting_on_the_moving_average_from_epoch_0_resumes_exactly(tmp_path: Path, tiny_cfg: TrainConfig) -> None:
    straight = fit(_ema_cfg(tiny_cfg, name="straight"))
    assert [r["epoch"] for r in straight.history] == [0, 1, 2, 3]
    expected = select_epoch(straight.history, "pd_then_iou")
    assert straight.best_metrics["epoch"] == expected["epoch"]
    assert straight.best_metrics["val_iou"] == expected["val_iou"]
    best, meta = read_checkpoint(straight.best_path)
    assert meta["epoch"] == expected["epoch"] and meta["metrics"]["val_pd"] == expected["val_pd"]
    # the validated scores are the moving average's: the last epoch's best is the ema file's weights
    ema, ema_meta = read_checkpoint(straight.run_dir / "ema.safetensors")
    assert ema_meta["metrics"]["val_iou"] == straight.history[-1]["val_iou"]
    _, last_meta = read_checkpoint(straight.last_path)
    assert "val_iou" not in last_meta["metrics"]
    if expected["epoch"] == 3:
        for key in best:
            torch.testing.assert_close(best[key], ema[key], rtol=0, atol=0, msg=key)

    fit(_ema_cfg(tiny_cfg, name="resumed", epochs=1))
    resumed = fit(_ema_cfg(tiny_cfg, name="resumed"), resume=tmp_path / "resumed")
    assert [r["epoch"] for r in resumed.history] == [0, 1, 2, 3]
    assert [resumed.best_metrics[k] for k in ("epoch", "val_iou", "val_pd")] == \
        [straight.best_metrics[k] for k in ("epoch", "val_iou", "val_pd")]
    for name in ("last.safetensors", "ema.safetensors", "best.safetensors"):
        a, _ = read_checkpoint(straight.run_dir / name)
        b, _ = read_checkpoint(resumed.run_dir / name)
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=f"{name} {key}")


def test_a_start_nothing_beats_is_written_as_best(tiny_cfg: TrainConfig) -> None:
    # a learning rate of 1e-12 changes nothing that validation sees: no epoch beats the start (ties keep epoch 0)
    cfg = _ema_cfg(tiny_cfg, name="still", epochs=2)
    cfg.update({"lr": 1e-12})
    result = fit(cfg)
    start = result.history[0]
    assert result.best_metrics["epoch"] == 0, result.history
    _, meta = read_checkpoint(result.best_path)
    assert meta["epoch"] == 0 and meta["metrics"]["val_iou"] == start["val_iou"]
