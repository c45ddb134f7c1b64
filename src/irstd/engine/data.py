"""Datasets and loaders for a training run: a training list split into train/val, never the test list."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

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
from ..data.stats import compute_input_range
from .config import TrainConfig

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
    input_range: dict[str, Any] | None = None  # value range of the training frames (compute_input_range)

    def train_loader(self, epoch: int) -> DataLoader:
        """Shuffled loader whose order depends only on (seed, epoch)."""
        return build_loader(
            self.train, self.cfg.batch_size, shuffle=True, num_workers=self.cfg.num_workers,
            seed=epoch_seed(self.cfg.seed, epoch), drop_last=len(self.train) > self.cfg.batch_size,
            device=self.device,
        )

    def val_loader(self) -> DataLoader:
        """Full-size validation images, padded to the stride per batch."""
        return build_loader(
            self.val, self.cfg.eval_batch_size, shuffle=False, num_workers=self.cfg.num_workers,
            collate_fn=pad_collate(self.stride), device=self.device,
        )


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
        return TrainData(train, val, train.normalization, desc, cfg, stride, device, compute_input_range(train))
    common: dict[str, Any] = dict(
        split=cfg.split, split_file=cfg.split_file, mask_dir=cfg.mask_dir, skip_invalid=cfg.skip_invalid
    )
    full = open_dataset(cfg.data, **common, normalization=(0.0, 1.0))  # only its item list is used here
    order = np.random.default_rng(cfg.seed).permutation(len(full))
    n_val = int(round(cfg.val_fraction * len(full))) if cfg.val_fraction > 0 else 0
    val_idx, train_idx = sorted(order[:n_val].tolist()), sorted(order[n_val:].tolist())
    norm = compute_normalization([full.items[i] for i in train_idx])
    input_range = compute_input_range([full.items[i] for i in train_idx])
    train = Subset(open_dataset(cfg.data, **common, transform=train_transform(cfg), normalization=norm), train_idx)
    val = Subset(open_dataset(cfg.data, **common, normalization=norm), val_idx)
    split = cfg.split_file or cfg.split
    desc = f"{cfg.data} [{split}] ({getattr(full.layout, 'name', full.layout)} layout)"
    return TrainData(train, val, norm, desc, cfg, stride, device, input_range)
