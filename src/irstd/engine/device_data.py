"""Training data decoded once and kept on the training device; crops and flips are done there.

The host path (:class:`torch.utils.data.DataLoader` over the dataset with ``RandomCrop`` + ``RandomFlip``)
re-reads and re-crops every image on the host in every epoch. Here each training frame is decoded and
normalised once, padded bottom/right to at least the crop size (as ``RandomCrop`` pads), and stored in one
flat buffer on the device. A batch is a single gather from that buffer, with the flips folded into the
gather indices.

Equivalence with the host path (tested): the random *parameters* of every crop (origin, flips) are drawn
on the host by the very transform objects of the host path (``RandomCrop.origin``, ``RandomFlip.draw``),
item by item under the same per-item seed, in batches from the same batch sampler. The batches are
therefore bit-for-bit those of the host path, so switching paths changes no result and a resumed run
draws what an uninterrupted one does.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from ..data import RandomCrop, RandomFlip

__all__ = ["DeviceTrainSet", "untransformed"]

log = logging.getLogger(__name__)


def untransformed(dataset: Dataset) -> Dataset:
    """A shallow copy of ``dataset`` (or of the dataset under a ``Subset``) whose items skip its transform."""
    if isinstance(dataset, Subset):
        return Subset(untransformed(dataset.dataset), dataset.indices)
    plain = copy.copy(dataset)
    plain.transform = None  # type: ignore[attr-defined]
    return plain


class _Draws(Dataset):
    """Item ``i`` = the random parameters of frame ``i``'s next crop: (i, top, left, flip_lr, flip_ud)."""

    def __init__(self, masks: list[torch.Tensor], crop: RandomCrop, flip: RandomFlip) -> None:
        self.masks, self.crop, self.flip = masks, crop, flip

    def __len__(self) -> int:
        return len(self.masks)

    def __getitem__(self, index: int) -> list[int]:
        mask = self.masks[index]  # (H', W') host copy, for the target-centred origin
        top, left = self.crop.origin(mask, *mask.shape)
        dims = self.flip.draw()
        return [index, top, left, int(-1 in dims), int(-2 in dims)]


def _stack_draws(batch: list[list[int]]) -> torch.Tensor:
    return torch.tensor(batch, dtype=torch.long)  # (B, 5)


class DeviceTrainSet:
    """The training frames of one run on ``device``; :meth:`batches` yields the epoch's batches there."""

    def __init__(self, dataset: Dataset, crop: RandomCrop, flip: RandomFlip, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.crop, self.flip = crop, flip
        ch, cw = crop.size
        images, masks, host_masks, shapes, offsets = [], [], [], [], []
        offset = 0
        for i in range(len(dataset)):
            item = dataset[i]
            image, mask = item["image"], item["mask"]  # (C, H, W) normalised, (1, H, W) in {0, 1}
            h, w = image.shape[-2:]
            pad = (0, max(cw - w, 0), 0, max(ch - h, 0))  # (left, right, top, bottom), zeros = the mean
            image, mask = F.pad(image, pad, value=0.0), F.pad(mask, pad, value=0.0)
            hp, wp = image.shape[-2:]
            images.append(image.reshape(image.shape[0], -1))
            masks.append(mask.reshape(1, -1))
            host_masks.append(mask.reshape(hp, wp))
            shapes.append((hp, wp))
            offsets.append(offset)
            offset += hp * wp
        self.channels = images[0].shape[0]
        self.images = torch.cat(images, dim=1).to(self.device)  # (C, total pixels)
        self.masks = torch.cat(masks, dim=1).to(self.device)  # (1, total pixels)
        self.offsets = torch.tensor(offsets, dtype=torch.long, device=self.device)  # (N,)
        self.widths = torch.tensor([w for _, w in shapes], dtype=torch.long, device=self.device)  # (N,)
        self._draws = _Draws(host_masks, crop, flip)
        self._rows = torch.arange(ch, device=self.device)
        self._cols = torch.arange(cw, device=self.device)
        log.info("training data on %s: %d frames, %.1f MB", self.device, len(self), self.nbytes / 1e6)

    def __len__(self) -> int:
        return len(self._draws)

    @property
    def nbytes(self) -> int:
        return self.images.element_size() * self.images.numel() + self.masks.element_size() * self.masks.numel()

    def gather(self, draws: torch.Tensor) -> dict[str, torch.Tensor]:
        """Crops of ``draws`` ((B, 5): index, top, left, flip_lr, flip_ud) as {"image": (B, C, ch, cw), "mask": (B, 1, ch, cw)}."""
        ch, cw = self.crop.size
        d = draws.to(self.device)
        idx, top, left, flr, fud = d.unbind(1)  # (B,) each
        # a flipped crop reads its rows (columns) backwards: flip(crop)[r] = crop[ch - 1 - r]
        rows = torch.where(fud[:, None].bool(), ch - 1 - self._rows, self._rows) + top[:, None]  # (B, ch)
        cols = torch.where(flr[:, None].bool(), cw - 1 - self._cols, self._cols) + left[:, None]  # (B, cw)
        flat = (self.offsets[idx, None, None] + rows[:, :, None] * self.widths[idx, None, None]
                + cols[:, None, :])  # (B, ch, cw) positions in the flat buffers
        # stacked per channel so that the strides are the standard ones the host path's torch.stack gives
        # (a permuted size-1 channel dim has other strides, and the convolutions pick other kernels for it)
        image = torch.stack([self.images[c][flat] for c in range(self.channels)], dim=1)  # (B, C, ch, cw)
        mask = self.masks[0][flat].unsqueeze(1)  # (B, 1, ch, cw)
        return {"image": image, "mask": mask}

    @property
    def draws(self) -> Dataset:
        """Item ``i`` = the random parameters (index, top, left, flip_lr, flip_ud) of frame ``i``'s next crop,
        drawn by the host path's own transform objects in the order they draw (crop origin, then flips)."""
        return self._draws

    def batches(self, items: Dataset, sampler: Sampler[list[int]]) -> "_Batches":
        """The epoch's batches: ``sampler`` gives the index batches (as the host loader's batch sampler),
        ``items`` the draws of each index (e.g. :attr:`draws` under per-item seeds), gathered on the device."""
        loader = DataLoader(items, batch_sampler=sampler, num_workers=0, collate_fn=_stack_draws)
        return _Batches(self, loader)


class _Batches:
    """An iterable of device batches with a length (for the progress bar)."""

    def __init__(self, owner: DeviceTrainSet, loader: Any) -> None:
        self.owner, self.loader = owner, loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        # iter() starts the loader's iterator now, as iter(DataLoader) does (it draws the iterator's seed
        # from the loader's generator at once): code that calls iter() more than once (tqdm's asyncio
        # class does, in its constructor) then sees the same order from both paths
        draws = iter(self.loader)
        return (self.owner.gather(d) for d in draws)
