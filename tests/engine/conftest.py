from __future__ import annotations

from pathlib import Path

import pytest
import torch

from irstd.engine.config import TrainConfig
from irstd.models import create_model
from irstd.models.checkpoint import save_checkpoint

TINY = {"widths": [4, 8, 16, 32, 64]}


@pytest.fixture
def tiny_cfg(tmp_path: Path) -> TrainConfig:
    """A run that takes a few seconds: a narrow U-Net on 8 small synthetic crops."""
    return TrainConfig(
        model="unet", model_kwargs=dict(TINY), epochs=2, batch_size=4, crop_size=32, target_crop_prob=1.0,
        synthetic_train=8, synthetic_val=2, lr=1e-2, scheduler="constant", out=str(tmp_path), name="run",
        progress=False, eval_batch_size=2,
    )


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """A random narrow U-Net saved with fixed normalisation (scores need not be good, only reproducible)."""
    torch.manual_seed(3)
    model = create_model("unet", widths=(4, 8, 16, 32, 64)).eval()
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, model, normalization=(110.0, 20.0))
    return path
