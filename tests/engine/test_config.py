from __future__ import annotations

from pathlib import Path

import pytest

from irstd.engine.config import TrainConfig, load_config, parse_overrides
from irstd.errors import ConfigError


def test_precedence_defaults_yaml_overrides(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text("lr: 0.001\nepochs: 30\nmodel: unet\n")
    cfg = load_config(path, parse_overrides(["epochs=5", "model_kwargs={widths: [8, 16]}"]))
    assert cfg.lr == 0.001 and cfg.epochs == 5 and cfg.model == "unet"
    assert cfg.model_kwargs == {"widths": [8, 16]}
    assert cfg.batch_size == TrainConfig().batch_size


def test_unknown_key_suggests(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text("learning_rate: 0.1\nepoch: 3\n")
    with pytest.raises(ConfigError, match="unknown key 'learning_rate'"):
        load_config(path)
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        load_config(None, {"epoch": 3})


@pytest.mark.parametrize(
    "override,message",
    [({"epochs": "many"}, "not a valid int"), ({"amp": "fp8"}, "amp must be"), ({"val_fraction": 1.5}, "val_fraction"),
     ({"channels_last": "maybe"}, "not a valid bool"),
     # optional keys are typed too (they used to take whatever YAML gave, and fail later or never)
     ({"grad_clip": "abc"}, r"grad_clip='abc' is not a valid float"), ({"aux_weight": "x"}, "not a valid float"),
     ({"split_seed": "1.5"}, "split_seed=1.5 is not a valid int"), ({"epochs": "2.5"}, "not a valid int"),
     ({"threads": "true"}, "not a valid int"), ({"channels_last": 1}, "not a valid bool")],
)
def test_bad_values(override: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, override)


def test_string_values_are_typed() -> None:
    cfg = load_config(None, {"lr": "3e-4", "channels_last": "true", "grad_clip": "1.5", "data": "123"})
    assert cfg.lr == pytest.approx(3e-4) and cfg.channels_last is True and cfg.grad_clip == 1.5
    assert cfg.data == "123"  # a path stays a string
    cfg = load_config(None, {"split_seed": "2", "grad_clip": 1, "epochs": 3.0, "name": 7})
    assert (cfg.split_seed, cfg.grad_clip, cfg.epochs, cfg.name) == (2, 1.0, 3, "7")
    assert isinstance(cfg.grad_clip, float) and isinstance(cfg.epochs, int)
    assert load_config(None, {"split_seed": 2, "aux_weight": None}).aux_weight is None


def test_missing_or_bad_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["lr"])


def test_shipped_configs_parse(repo_root: Path) -> None:
    for path in sorted((repo_root / "configs").glob("*.yaml")):
        load_config(path)
