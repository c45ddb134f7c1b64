"""Seeding: one call seeds every generator, and one formula gives each epoch its own seed."""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["seed_everything", "epoch_seed", "sample_seed"]

#: a prime spacing the epochs' seeds so that runs with neighbouring seeds never share an epoch's stream
_EPOCH_STRIDE = 100_003


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch`` of a run seeded ``seed``: each epoch's randomness depends on
    (seed, epoch) alone, which is what makes a resumed run draw exactly what an uninterrupted one does."""
    return seed * _EPOCH_STRIDE + epoch


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of training item ``index``'s augmentation in ``epoch``: a function of (seed, epoch, index)
    alone, so an item is cropped and flipped alike whichever rank, worker or batch position loads it."""
    return int(np.random.SeedSequence([seed % 2**63, epoch, index]).generate_state(1, np.uint64)[0] >> 1)
