"""DataLoader construction: seeded workers, pinned memory only for CUDA, and padded batching of
frames of different sizes for evaluation at native resolution."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..core.padding import pad_to, padded_size

__all__ = ["pad_collate", "PadCollate", "build_loader", "seed_worker"]


class PadCollate:
    """Collate items of different sizes: pad bottom/right to a common stride multiple.

    Masks are padded with zeros, images with ``mode`` (default ``constant``: zeros, the training mean;
    the evaluation and validation loaders pass :data:`~irstd.core.padding.STRIDE_PAD_MODE`, the pad the
    predictor uses, so that a change of it reaches them all). Returns ``{"image": (B, C, Hp, Wp), "mask": (B, 1, Hp, Wp), "size": [(h, w), …],
    "padded": [(hp, wp), …], "name": [...], "path": [...]}``; crop each prediction back with
    ``irstd.core.padding.crop_to(pred[i], size[i])``. ``padded`` is each frame's own stride-padded size, the
    input it would get alone: :func:`irstd.engine.eval_loop.run_evaluation` runs each frame at that size, so a
    score never depends on which frames share its batch.
    A class (not a closure) so that it pickles into worker processes.
    """

    def __init__(self, stride: int = 1, mode: str = "constant") -> None:
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.stride = int(stride)
        self.mode = mode

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        sizes = [tuple(int(v) for v in b["image"].shape[-2:]) for b in batch]
        hp, wp = padded_size(max(h for h, _ in sizes), max(w for _, w in sizes), self.stride)
        out: dict[str, Any] = {"size": sizes, "padded": [padded_size(h, w, self.stride) for h, w in sizes]}
        for key in ("image", "mask"):
            if key in batch[0]:
                # (C, h, w) → (C, Hp, Wp): pad = (left, right, top, bottom)
                mode = self.mode if key == "image" else "constant"
                out[key] = torch.stack([pad_to(b[key], (hp, wp), mode) for b in batch])
        for key in batch[0]:
            if key not in out:
                out[key] = [b[key] for b in batch]
        return out

    def __repr__(self) -> str:
        return f"PadCollate(stride={self.stride}, mode={self.mode!r})"


def pad_collate(stride: int = 1, mode: str = "constant") -> PadCollate:
    """A collate_fn that pads a batch of different-size frames to a common multiple of ``stride``
    (images in ``mode``: see :class:`PadCollate`)."""
    return PadCollate(stride, mode)


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` in a worker from torch's per-worker seed (set by the loader's generator)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    num_workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    device: str | torch.device = "cpu",
) -> DataLoader:
    """A DataLoader whose order and augmentations depend only on ``seed``.

    ``pin_memory`` is used only when ``device`` is CUDA (it is wasted work on CPU).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        drop_last=drop_last,
        collate_fn=collate_fn,
        generator=generator,
        worker_init_fn=seed_worker if num_workers > 0 else None,
        pin_memory=torch.device(device).type == "cuda",
        persistent_workers=num_workers > 0,
    )
