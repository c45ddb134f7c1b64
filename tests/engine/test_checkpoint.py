from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from irstd.core.files import atomic_write
from irstd.models.checkpoint import load_model, read_checkpoint, save_checkpoint
from irstd.errors import CheckpointError
from irstd.models import create_model


def test_round_trip_rebuilds_from_file_alone(tmp_path: Path) -> None:
    model = create_model("sgem_unet", widths=(8, 16, 32, 64, 128), heads=4).eval()
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model, normalization=(100.0, 20.0), config={"lr": 1e-3}, metrics={"val_iou": 0.5}, epoch=3)
    loaded = load_model(path)
    x = torch.randn(2, 1, 48, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert loaded.normalization == (100.0, 20.0)
    assert loaded.checkpoint_meta["metrics"] == {"val_iou": 0.5} and loaded.checkpoint_meta["stride"] == 16
    assert not loaded.training
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp file left


def test_foreign_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "none.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        read_checkpoint(junk)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(CheckpointError, match="without irstd metadata"):
        read_checkpoint(plain)


def test_weights_that_do_not_fit(tmp_path: Path) -> None:
    model = create_model("unet", widths=(4, 8, 16, 32, 64))
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model, normalization=(0.0, 1.0))
    state, meta = read_checkpoint(path)
    meta["model_kwargs"] = {"widths": [8, 16, 32, 64, 128]}
    import json

    save_file(state, str(path), metadata={"irstd": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(path)


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")

    def fail(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]
