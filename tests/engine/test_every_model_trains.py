"""Training steps through the real engine for every registered learned model.

Covers the extra-output paths (deep supervision "aux", edge supervision "edge") through ModelLoss.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from irstd.data import Compose, RandomCrop, RandomFlip, open_synthetic
from irstd.engine.epoch import train_one_epoch
from irstd.losses import ModelLoss
from irstd.models import create_model, list_models


@pytest.mark.parametrize("name", list_models(kind="learned"))
def test_engine_steps_move_the_weights(name: str) -> None:
    model = create_model(name)
    crop = max(64, model.stride * 2)
    # two steps: zero-initialised residual gates (e.g. ABCNet's attention) pass gradient on from the second
    data = open_synthetic("train", 4, seed=1, transform=Compose([RandomCrop(crop, target_prob=1.0), RandomFlip()]))
    loader = DataLoader(data, batch_size=2)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = ModelLoss("softiou_bce")
    stats = train_one_epoch(model, loader, optimizer, loss_fn, torch.device("cpu"))
    assert torch.isfinite(torch.tensor(stats["loss"])) and stats["loss"] > 0
    changed = [k for k, v in model.named_parameters() if not torch.equal(v, before[k])]
    assert len(changed) >= 0.9 * len(before), f"{name}: only {len(changed)}/{len(before)} tensors moved"
    if model.extra_outputs:  # the extra heads were trained too: their parameters are among those that moved
        model.train()
        out = model(torch.zeros(1, 1, crop, crop))
        assert set(model.extra_outputs) <= set(out)
