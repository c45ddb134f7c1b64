"""Background crops in every training batch (the ``negatives:`` block, docs/clutter.md).

A micro-batch of ``batch_size`` holds ``n_pos`` target crops (the ordinary training items, in the
order :class:`~irstd.engine.data.GlobalBatchSampler` gives them, ``n_pos`` per micro-batch) followed by
``n_neg`` background crops. A background crop is addressed by its *slot*: slot ``s`` of an epoch is
the ``s``-th background crop of the whole epoch over every rank, and it is item ``n + s`` of the
:class:`MixedTrainSet` (``n`` = number of target items). Its crop is drawn under the per-item seed of
that index like any training item, so it depends on (seed, epoch, slot) only: the host loader and the
device path draw the same crops, and a resumed epoch draws what the uninterrupted one did.
"""

from __future__ import annotations

import logging
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data import RandomCrop, RandomFlip
from ..data.items import normalize
from ..data.negatives import NegativeSet
from .mining import MinedLocation

__all__ = ["NegativeCrops", "MixedTrainSet", "MixedDraws", "MixedBatchSampler", "MixedDeviceBatches", "compact_frame"]

log = logging.getLogger(__name__)


def compact_frame(frame: np.ndarray) -> np.ndarray:
    """``frame`` (float32, native range) in the smallest exact dtype: uint8 or uint16 when every value
    is an integer in range (8/16-bit files), else float32 (4x less memory for an 8-bit frame)."""
    if frame.size and np.all(frame == np.round(frame)) and frame.min() >= 0:
        top = float(frame.max())
        if top <= 255:
            return frame.astype(np.uint8)
        if top <= 65535:
            return frame.astype(np.uint16)
    return frame


class NegativeCrops:
    """The negative frames of a run, decoded once, and the crop of a slot.

    ``frames[i]`` is frame ``i`` in its compact native dtype (H, W); ``pool`` the mined locations
    (``(frame, y, x, score)``, empty until mining has run).
    """

    def __init__(self, negatives: NegativeSet, normalization: tuple[float, float], crop_size: int,
                 flip: RandomFlip, per_batch: int, mined_per_batch: int) -> None:
        self.set = negatives
        self.frames = [compact_frame(negatives.load(i)) for i in range(len(negatives))]
        self.normalization = normalization
        self.crop = RandomCrop(crop_size)  # uniform origins, drawn as the target crops draw theirs
        self.flip = flip  # the target items' flip transform: same augmentation
        self.per_batch, self.mined_per_batch = int(per_batch), int(mined_per_batch)
        self.pool: list[MinedLocation] = []
        self.mined_at: int | None = None  # epochs finished when the pool was mined (None: never)
        log.info("negatives: %d frames of %d groups from %s, %.1f MB in memory", len(self.frames),
                 len(negatives.groups), negatives.root, self.nbytes / 1e6)

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for f in self.frames)

    def set_pool(self, pool: Sequence[Sequence[Any]], mined_at: int | None = None) -> None:
        """Replace the mined locations (from :func:`~irstd.engine.mining.score_negatives` or a resume
        state), mined once ``mined_at`` epochs had finished."""
        self.pool = [(int(f), int(y), int(x), float(s)) for f, y, x, s in pool]
        self.mined_at = None if mined_at is None else int(mined_at)

    def origin(self, slot: int) -> tuple[int, int, int, bool]:
        """(frame, top, left, mined) of slot ``slot``'s crop, drawn from torch's global generator.

        Positions ``< mined_per_batch`` of each micro-batch take a mined location (once there are any),
        centred in the crop where the frame allows; the others a uniform crop of a uniform frame.
        """
        ch, cw = self.crop.size
        if slot % self.per_batch < self.mined_per_batch and self.pool:
            f, y, x, _ = self.pool[int(torch.randint(len(self.pool), ()))]
            h, w = self._padded(f)
            return f, min(max(y - ch // 2, 0), h - ch), min(max(x - cw // 2, 0), w - cw), True
        f = int(torch.randint(len(self.frames), ()))
        h, w = self._padded(f)
        top, left = self.crop.origin(torch.empty(0), h, w)  # target_prob 0: the mask is not read
        return f, top, left, False

    def _padded(self, f: int) -> tuple[int, int]:
        """Frame ``f``'s size once padded bottom/right to at least the crop (as ``RandomCrop`` pads)."""
        h, w = self.frames[f].shape
        return max(h, self.crop.size[0]), max(w, self.crop.size[1])

    def item(self, slot: int) -> dict[str, Any]:
        """The training item of slot ``slot``: a normalised, flipped background crop with an empty mask."""
        ch, cw = self.crop.size
        f, top, left, mined = self.origin(slot)
        region = self.frames[f][top: top + ch, left: left + cw]  # (≤ch, ≤cw) native dtype
        image = torch.from_numpy(normalize(region, self.normalization))[None]  # (1, h', w') float32
        # padding after normalising puts zeros (the mean) where RandomCrop's padding puts them
        image = F.pad(image, (0, cw - image.shape[-1], 0, ch - image.shape[-2]), value=0.0)  # (1, ch, cw)
        dims = self.flip.draw()
        if dims:
            image = torch.flip(image, dims)
        frame = self.set.frames[f]
        return {"image": image, "mask": torch.zeros(1, ch, cw), "name": frame.stem, "path": str(frame.path),
                "negative": True, "mined": mined}


class MixedTrainSet(Dataset):
    """Target items ``0..n-1`` (``targets[i]`` with ``negative=False``) then background slots ``n + s``."""

    def __init__(self, targets: Dataset, negatives: NegativeCrops) -> None:
        self.targets, self.negatives = targets, negatives
        self.n = len(targets)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index >= self.n:
            return self.negatives.item(index - self.n)
        item = dict(self.targets[index])
        item.update(negative=False, mined=False)
        return item


class MixedBatchSampler(Sampler[list[int]]):
    """``targets``' micro-batches (of ``n_pos`` items) each followed by ``n_neg`` background slots.

    Micro-batch ``m`` of this rank is global micro-batch ``m·world + rank`` (the order of
    :class:`~irstd.engine.data.GlobalBatchSampler`); its slots are ``(m·world + rank)·n_neg + p``.
    """

    def __init__(self, targets: Sampler[list[int]], n: int, n_neg: int, rank: int = 0, world: int = 1) -> None:
        self.targets, self.n, self.n_neg, self.rank, self.world = targets, int(n), int(n_neg), int(rank), int(world)

    def __len__(self) -> int:
        return len(self.targets)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[list[int]]:
        for m, batch in enumerate(self.targets):
            first = (m * self.world + self.rank) * self.n_neg
            yield list(batch) + [self.n + first + p for p in range(self.n_neg)]


class MixedDraws(MixedTrainSet):
    """Device path: item ``i < n`` is target ``i``'s crop parameters (as drawn), item ``n + s`` slot ``s``'s crop."""

    def __getitem__(self, index: int) -> Any:
        return self.negatives.item(index - self.n) if index >= self.n else self.targets[index]


class MixedDeviceBatches:
    """The device path's epoch with background crops: target crops gathered on the device (as
    :class:`~irstd.engine.device_data.DeviceTrainSet` does), background crops made on the host by the
    host path's own code and moved over, concatenated in the host path's order (targets, then slots)."""

    def __init__(self, on_device: Any, items: Dataset, sampler: Sampler[list[int]]) -> None:
        self.owner = on_device
        self.loader = DataLoader(items, batch_sampler=sampler, num_workers=0, collate_fn=list)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        batches = iter(self.loader)  # started now, as iter(DataLoader) is (see device_data._Batches)
        return (self._batch(b) for b in batches)

    def _batch(self, items: list[Any]) -> dict[str, torch.Tensor]:
        draws = [x for x in items if not isinstance(x, dict)]
        crops = [x for x in items if isinstance(x, dict)]
        device = self.owner.device
        parts = [self.owner.gather(torch.tensor(draws, dtype=torch.long))] if draws else []
        if crops:
            parts.append({"image": torch.stack([c["image"] for c in crops]).to(device),
                          "mask": torch.stack([c["mask"] for c in crops]).to(device)})
        out = {k: torch.cat([p[k] for p in parts]) for k in ("image", "mask")}
        out["negative"] = torch.tensor([False] * len(draws) + [True] * len(crops))
        out["mined"] = torch.tensor([False] * len(draws) + [bool(c["mined"]) for c in crops])
        return out
