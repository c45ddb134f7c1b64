"""The device-resident training data path: the same batches as the host path, and training converges on it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from irstd.core.seeding import epoch_seed, seed_everything
from irstd.engine import fit, read_checkpoint
from irstd.engine.config import TrainConfig
from irstd.engine.data import build_train_val


def _epoch_batches(cfg: TrainConfig, epoch: int) -> list[dict[str, torch.Tensor]]:
    data = build_train_val(cfg, stride=1)
    seed_everything(epoch_seed(cfg.seed, epoch))  # as the trainer does before each epoch
    return [{"image": b["image"].clone(), "mask": b["mask"].clone()} for b in data.train_loader(epoch)]


@pytest.mark.parametrize("target_prob", [0.0, 0.7])
def test_device_batches_equal_host_batches(tiny_cfg: TrainConfig, target_prob: float) -> None:
    # 40 px scenes cropped to 48 px: every frame is padded first, as RandomCrop pads it
    cfg = dataclasses.replace(tiny_cfg, synthetic_train=7, batch_size=3, crop_size=32, target_crop_prob=target_prob)
    for epoch in (0, 3):
        host = _epoch_batches(dataclasses.replace(cfg, device_data="off"), epoch)
        dev = _epoch_batches(dataclasses.replace(cfg, device_data="on"), epoch)
        assert len(host) == len(dev) == 2  # 7 frames, batch 3, last partial batch dropped
        for h, d in zip(host, dev):
            assert h["image"].shape == d["image"].shape == (3, 1, 32, 32)
            torch.testing.assert_close(d["image"], h["image"], rtol=0, atol=0)
            torch.testing.assert_close(d["mask"], h["mask"], rtol=0, atol=0)
    # the draws really differ between epochs (the comparison above is not of constant batches)
    assert not torch.equal(_epoch_batches(cfg, 0)[0]["image"], _epoch_batches(cfg, 1)[0]["image"])


def test_device_path_pads_frames_smaller_than_the_crop(tiny_cfg: TrainConfig) -> None:
    cfg = dataclasses.replace(tiny_cfg, synthetic_train=4, batch_size=2, crop_size=320, target_crop_prob=0.5)
    host = _epoch_batches(dataclasses.replace(cfg, device_data="off"), 0)
    dev = _epoch_batches(dataclasses.replace(cfg, device_data="on"), 0)
    for h, d in zip(host, dev):
        assert d["image"].shape[-2:] == (320, 320)
        torch.testing.assert_close(d["image"], h["image"], rtol=0, atol=0)
        torch.testing.assert_close(d["mask"], h["mask"], rtol=0, atol=0)


def test_training_on_device_data_converges_and_matches_host(tmp_path: Path, tiny_cfg: TrainConfig) -> None:
    cfg = dataclasses.replace(tiny_cfg, epochs=4, synthetic_train=12, lr=1e-2)
    dev = fit(dataclasses.replace(cfg, name="dev", device_data="on"))
    losses = [r["loss"] for r in dev.history]
    assert losses[-1] < losses[0]
    host = fit(dataclasses.replace(cfg, name="host", device_data="off"))
    a, _ = read_checkpoint(dev.last_path)
    b, _ = read_checkpoint(host.last_path)
    for key in a:  # same batches in the same order: the same weights
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_ema_checkpoint_is_written_and_resumes_exactly(tmp_path: Path, tiny_cfg: TrainConfig) -> None:
    cfg = dataclasses.replace(tiny_cfg, ema_decay=0.9, epochs=2)
    straight = fit(dataclasses.replace(cfg, name="straight"))
    fit(dataclasses.replace(cfg, name="resumed", epochs=1))
    fit(dataclasses.replace(cfg, name="resumed"), resume=tmp_path / "resumed")
    ema_a, meta = read_checkpoint(straight.run_dir / "ema.safetensors")
    ema_b, _ = read_checkpoint(tmp_path / "resumed" / "ema.safetensors")
    last, _ = read_checkpoint(straight.last_path)
    assert meta["epoch"] == 2
    for key in ema_a:
        torch.testing.assert_close(ema_a[key], ema_b[key], rtol=0, atol=0, msg=key)
    # an average of the trajectory, not a copy of the last weights
    assert any(not torch.equal(ema_a[k], last[k]) for k in ema_a if ema_a[k].is_floating_point())
    # a shadow copy: the trained weights are bit-identical to a run without it (the sweep relies on this)
    plain, _ = read_checkpoint(fit(dataclasses.replace(cfg, name="plain", ema_decay=0.0)).last_path)
    for key in last:
        torch.testing.assert_close(last[key], plain[key], rtol=0, atol=0, msg=key)
