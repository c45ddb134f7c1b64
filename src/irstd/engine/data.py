"""Datasets and loaders for a training run: a training list split into train/val, never the test list."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch

import numpy as np
from torch.utils.data import DataLoader, Dataset, Subset

from ..data import (
    Compose,
    RandomCrop,
    RandomFlip,
    build_loader,
    compute_normalization,
    open_dataset,
    open_synthetic,
    pad_collate,
)
from ..core.seeding import epoch_seed
from .config import TrainConfig
from .device_data import DeviceTrainSet, untransformed

__all__ = ["TrainData", "build_train_val"]

log = logging.getLogger(__name__)


@dataclass
class TrainData:
    """Training and validation sets of one run, with the normalisation fitted on the training part."""

    train: Dataset
    val: Dataset
    normalization: tuple[float, float]
    description: str
    cfg: TrainConfig
    stride: int
    device: str = "cpu"  # resolved device: decides pinned memory
    _on_device: DeviceTrainSet | None = field(default=None, repr=False)
    _val_batches: list[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def data_on_device(self) -> bool:
        """Whether the training frames live on the training device (config key ``device_data``)."""
        return resolve_device_data(self.cfg.device_data, self.device)

    def train_loader(self, epoch: int) -> Iterable[dict[str, Any]]:
        """Shuffled batches whose order and crops depend only on (seed, epoch), from either path."""
        drop_last = len(self.train) > self.cfg.batch_size
        if self.data_on_device:
            if self._on_device is None:  # decoded once, on first use
                crop, flip = train_transform(self.cfg).transforms
                self._on_device = DeviceTrainSet(untransformed(self.train), crop, flip, self.device)
            return self._on_device.batches(self.cfg.batch_size, epoch_seed(self.cfg.seed, epoch), drop_last)
        return build_loader(
            self.train, self.cfg.batch_size, shuffle=True, num_workers=self.cfg.num_workers,
            seed=epoch_seed(self.cfg.seed, epoch), drop_last=drop_last, device=self.device,
        )

    def val_loader(self) -> Iterable[dict[str, Any]]:
        """Full-size validation images, padded to the stride per batch (kept on the device with ``device_data``)."""
        loader = build_loader(
            self.val, self.cfg.eval_batch_size, shuffle=False, num_workers=self.cfg.num_workers,
            collate_fn=pad_collate(self.stride), device=self.device,
        )
        if not self.data_on_device:
            return loader
        if self._val_batches is None:
            self._val_batches = [{k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in b.items()}
                                 for b in loader]
        return self._val_batches


def resolve_device_data(choice: str, device: str | torch.device) -> bool:
    """``device_data`` = on | off | auto. ``auto`` is on for every device: the device-resident path is the
    faster one on CUDA and on the CPU alike (``benchmarks/device_data.py``) and draws the same batches."""
    if choice == "auto":
        return True
    return choice == "on"


def train_transform(cfg: TrainConfig) -> Compose:
    """Random crop (optionally centred on targets) and flips."""
    return Compose([RandomCrop(cfg.crop_size, target_prob=cfg.target_crop_prob), RandomFlip()])


def build_train_val(cfg: TrainConfig, stride: int, device: str = "cpu") -> TrainData:
    """Open ``cfg.data`` (or the synthetic generator) and carve the validation part from the training list."""
    if cfg.data is None:
        train = open_synthetic("train", cfg.synthetic_train, cfg.synthetic_seed, transform=train_transform(cfg))
        # validation scenes from their own random stream (disjoint from train and test), same normalisation
        val = open_synthetic("val", cfg.synthetic_val, cfg.synthetic_seed, normalization=train.normalization)
        desc = f"synthetic scenes (seed {cfg.synthetic_seed})"
        return TrainData(train, val, train.normalization, desc, cfg, stride, device)
    common: dict[str, Any] = dict(
        split=cfg.split, split_file=cfg.split_file, mask_dir=cfg.mask_dir, skip_invalid=cfg.skip_invalid
    )
    full = open_dataset(cfg.data, **common, normalization=(0.0, 1.0))  # only its item list is used here
    order = np.random.default_rng(cfg.seed).permutation(len(full))
    n_val = int(round(cfg.val_fraction * len(full))) if cfg.val_fraction > 0 else 0
    val_idx, train_idx = sorted(order[:n_val].tolist()), sorted(order[n_val:].tolist())
    norm = compute_normalization([full.items[i] for i in train_idx])
    train = Subset(open_dataset(cfg.data, **common, transform=train_transform(cfg), normalization=norm), train_idx)
    val = Subset(open_dataset(cfg.data, **common, normalization=norm), val_idx)
    split = cfg.split_file or cfg.split
    desc = f"{cfg.data} [{split}] ({getattr(full.layout, 'name', full.layout)} layout)"
    return TrainData(train, val, norm, desc, cfg, stride, device)
