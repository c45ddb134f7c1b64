"""The engine's single places: the optimiser/scheduler table, the run folder's names, the evaluation
options and their flat keywords, the metric columns, the synthetic streams."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from irstd.data import SPLIT_STREAMS, TEST_STREAM, TRAIN_STREAM, VAL_STREAM
from irstd.engine.config import NegativesConfig, TrainConfig
from irstd.engine.eval_options import EvalData, EvalOptions, NegativesOptions, RunMode, SweepOptions
from irstd.engine.optimisation import OPTIMIZERS, SCHEDULERS, build_optimizer, build_scheduler
from irstd.engine.run_folder import CHECKPOINTS, RunFolder
from irstd.errors import ConfigError
from irstd.experiments import METRICS
from irstd.metrics import METRIC_COLUMNS, SegResult


def test_config_accepts_exactly_the_optimisation_table() -> None:
    layer = torch.nn.Linear(2, 1)
    for name in OPTIMIZERS:
        cfg = TrainConfig(optimizer=name)
        cfg.validate()
        assert isinstance(build_optimizer(cfg, layer.parameters()), torch.optim.Optimizer)
    for name in SCHEDULERS:
        cfg = TrainConfig(scheduler=name, epochs=3)
        cfg.validate()
        build_scheduler(cfg, build_optimizer(cfg, layer.parameters()))
    with pytest.raises(ConfigError, match="optimizer must be adam, adamw or sgd"):
        TrainConfig.from_dict({"optimizer": "lion"})
    with pytest.raises(ConfigError, match="scheduler must be constant, cosine or multistep"):
        TrainConfig.from_dict({"scheduler": "poly"})


def test_negatives_block_takes_the_dataclass_defaults() -> None:
    neg = NegativesConfig.parse({"root": "somewhere"}, batch_size=8, crop_size=64)
    assert neg == NegativesConfig(root="somewhere", batch_size=8)


def test_run_folder_names_every_file(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    assert {p.name for p in (folder.config, folder.log_jsonl, folder.log_csv, folder.last, folder.state,
                             folder.best, folder.ema)} == {
        "config.yaml", "log.jsonl", "log.csv", "last.safetensors", "last.state.pt", "best.safetensors",
        "ema.safetensors"}
    assert [folder.checkpoint(k).name for k in CHECKPOINTS] == ["best.safetensors", "last.safetensors",
                                                                 "ema.safetensors"]
    folder.path.mkdir()
    folder.last.write_bytes(b"")
    assert RunFolder.of(folder.last) == folder and RunFolder.of(folder.path) == folder


def test_flat_keywords_map_onto_the_option_groups() -> None:
    opts = EvalOptions.from_keywords("root", split="val", batch_size=3, device="cpu", amp="bf16", sweep=True,
                                     sweep_thresholds=[0.5], save_masks="m", negatives="n", negatives_split=None,
                                     targets=False, threshold=0.3, synthetic_n=7)
    assert opts.data == EvalData("root", "val", batch_size=3, synthetic_n=7)
    assert opts.run == RunMode("cpu", "bf16")
    assert opts.sweep == SweepOptions(True, [0.5]) and opts.masks.folder == "m"
    assert opts.negatives == NegativesOptions("n", None, False) and opts.threshold == 0.3
    assert EvalOptions.from_keywords() == EvalOptions()
    with pytest.raises(TypeError, match="nosuch"):
        EvalOptions.from_keywords(nosuch=1)


def test_metric_columns_are_the_one_table() -> None:
    result = SegResult(*([0.5] * 9), n_images=1, n_targets=1, n_pixels=1)
    header = result.to_markdown().splitlines()[0]
    assert header == "| " + " | ".join(c.header for c in METRIC_COLUMNS.values()) + " |"
    assert all(METRIC_COLUMNS[k].title == title and METRIC_COLUMNS[k].scale == scale for k, title, scale in METRICS)


def test_synthetic_splits_use_distinct_streams() -> None:
    assert (SPLIT_STREAMS["train"], SPLIT_STREAMS["test"], SPLIT_STREAMS["val"]) == (TRAIN_STREAM, TEST_STREAM,
                                                                                     VAL_STREAM)
    assert len({TRAIN_STREAM, TEST_STREAM, VAL_STREAM}) == 3


def test_options_and_keywords_score_the_same(plain_dataset: tuple[Path, list[str]], checkpoint: Path) -> None:
    from irstd.engine.evaluation import evaluate_model
    from irstd.models.checkpoint import load_model

    root, _ = plain_dataset
    model = load_model(checkpoint)
    flat = evaluate_model(model, root, split="test", device="cpu", batch_size=2, sweep=True)
    grouped = evaluate_model(model, root, options=EvalOptions(EvalData(split="test", batch_size=2), RunMode("cpu"),
                                                              sweep=SweepOptions(True)))
    assert json.dumps(flat.as_dict(), default=float) == json.dumps(grouped.as_dict(), default=float)  # NaN != NaN
    with pytest.raises(TypeError, match="together"):
        evaluate_model(model, root, options=EvalOptions(), split="test")
