"""The select frames of a run started from another run's weights (``init_weights``) on the same list are
the start's, whatever the new run's seed: otherwise its checkpoint is chosen on frames the start trained on."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest

from irstd.data import open_dataset
from irstd.engine import fit
from irstd.engine.config import TrainConfig
from irstd.engine.data import inherit_split_seed, split_seed
from irstd.engine.run_folder import RunFolder
from irstd.engine.trainer import _start_run


@pytest.fixture
def ten_frames(tmp_path: Path) -> Path:
    """Ten 40×40 frames, each with a bright 3×3 target, listed in train.txt."""
    from irstd.data.io import save_image, save_mask

    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        img = rng.normal(100, 10, (40, 40))
        mask = np.zeros((40, 40), bool)
        mask[18:21, 10 + i:13 + i] = True
        img[mask] += 80
        save_image(root / "images" / f"f{i}.png", np.clip(img, 0, 255))
        save_mask(root / "masks" / f"f{i}.png", mask)
    (root / "train.txt").write_text("\n".join(f"f{i}" for i in range(10)))
    return root


@pytest.fixture
def cfg(tiny_cfg: TrainConfig, ten_frames: Path) -> TrainConfig:
    return dataclasses.replace(tiny_cfg, data=str(ten_frames), val_fraction=0.3, epochs=1, crop_size=32)


def _select(cfg: TrainConfig) -> list[int]:
    return list(_start_run(cfg, None).data.val.indices)


def test_a_run_from_weights_trained_on_the_same_list_keeps_their_select_frames(
        cfg: TrainConfig, caplog: pytest.LogCaptureFixture) -> None:
    start = fit(dataclasses.replace(cfg, name="start"))  # seed 0
    own_seed_1 = _select(dataclasses.replace(cfg, seed=1, name="plain-seed1"))
    start_frames = _select(dataclasses.replace(cfg, name="plain-seed0"))
    assert own_seed_1 != start_frames  # else this test could not fail
    tuned = dataclasses.replace(cfg, seed=1, init_weights=str(start.best_path), name="tuned")
    with caplog.at_level(logging.INFO, logger="irstd.engine.data"):
        run = _start_run(tuned, None)
    assert list(run.data.val.indices) == start_frames
    assert run.cfg.split_seed == 0 and run.cfg.seed == 1  # training randomness stays the run's own
    assert RunFolder(Path(cfg.out) / "tuned").read_config().split_seed == 0  # so a resume keeps them
    assert sum("its select frames are kept" in r.getMessage() for r in caplog.records) == 1
    # and the run folder names them, as a split file irstd evaluate reads
    select = Path(cfg.out) / "tuned" / "select.txt"
    assert select.read_text().split() == [f"f{i}" for i in start_frames]
    again = open_dataset(cfg.data, split_file=str(select))
    assert [item.name for item in again.items] == [f"f{i}" for i in start_frames]


def test_an_explicit_split_seed_wins_with_a_warning(cfg: TrainConfig, caplog: pytest.LogCaptureFixture) -> None:
    start = fit(dataclasses.replace(cfg, name="start"))
    other = dataclasses.replace(cfg, seed=1, split_seed=1, init_weights=str(start.best_path), name="other")
    with caplog.at_level(logging.WARNING, logger="irstd.engine.data"):
        frames = _select(other)
    assert frames == _select(dataclasses.replace(cfg, seed=1, name="plain-seed1"))
    warned = [r.getMessage() for r in caplog.records if r.name == "irstd.engine.data" and r.levelno == logging.WARNING]
    assert len(warned) == 1 and "not held out" in warned[0] and "\n" not in warned[0]


def test_a_resume_keeps_the_inherited_select_frames(cfg: TrainConfig) -> None:
    start = fit(dataclasses.replace(cfg, name="start"))
    tuned = dataclasses.replace(cfg, seed=1, init_weights=str(start.best_path), name="tuned", epochs=1)
    first = fit(tuned)
    select = Path(first.run_dir) / "select.txt"
    written = select.read_text()
    select.unlink()  # as in a run folder from before select.txt
    # the caller passes its own config again (split_seed unset): the folder's saved one decides
    run = _start_run(dataclasses.replace(tuned, epochs=2), first.run_dir)
    assert list(run.data.val.indices) == _select(dataclasses.replace(cfg, name="plain-seed0"))
    assert select.read_text() == written  # named again on resume


def test_inherit_split_seed_only_for_the_same_list() -> None:
    cfg = TrainConfig(data="d", split_file="train.txt", seed=3)
    same = {**cfg.to_dict(), "seed": 0}
    assert inherit_split_seed(cfg, same, "x").split_seed == 0
    assert inherit_split_seed(cfg, {**same, "split_seed": 5}, "x").split_seed == 5
    for key, value in [("data", "other"), ("split_file", "other.txt"), ("val_fraction", 0.2), ("mask_dir", "m")]:
        assert inherit_split_seed(cfg, {**same, key: value}, "x") is cfg  # another list: its own seed
    assert inherit_split_seed(cfg, None, "x") is cfg  # a checkpoint without a saved config
    synthetic = TrainConfig(seed=3)
    assert inherit_split_seed(synthetic, {**synthetic.to_dict(), "seed": 0}, "x") is synthetic
    assert split_seed(cfg) == 3 and split_seed({"seed": 3, "split_seed": 1}) == 1
