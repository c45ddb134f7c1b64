"""Joint image/mask training transforms on the item dict (no torchvision).

Each transform takes the sample dict (:class:`~irstd.data.items.Sample`: ``{"image": (C, H, W),
"mask": (1, H, W), "name", "path"}``) and returns a new one with both tensors transformed identically
(other keys are passed through; a missing ``mask`` is allowed). Randomness comes from torch's generator (a given one, or the
global one that :func:`irstd.data.loader.build_loader` seeds per worker), so runs are reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .items import Sample, Transform

__all__ = ["Compose", "RandomCrop", "RandomFlip", "RandomRot90"]

_KEYS = ("image", "mask")


def _rand(generator: torch.Generator | None) -> float:
    return float(torch.rand((), generator=generator))


def _randint(high: int, generator: torch.Generator | None) -> int:
    """Uniform integer in [0, high)."""
    return int(torch.randint(high, (), generator=generator)) if high > 1 else 0


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, item: Sample) -> Sample:
        for t in self.transforms:
            item = t(item)
        return item

    def __repr__(self) -> str:
        return f"Compose({self.transforms})"


class RandomCrop:
    """Crop ``size`` (int or (h, w)); smaller frames are zero-padded bottom/right first.

    Zero is the dataset mean after normalisation, so padding adds no fake structure. With
    ``target_prob`` = p, a crop is, with probability p, placed so that a target pixel picked at random
    lies in the central half of the crop (small targets are rare in uniform crops); frames without
    target pixels always get a uniform crop.
    """

    def __init__(self, size: int | tuple[int, int], target_prob: float = 0.0,
                 generator: torch.Generator | None = None) -> None:
        self.size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if min(self.size) < 1:
            raise ValueError(f"crop size must be positive, got {size}")
        if not 0.0 <= target_prob <= 1.0:
            raise ValueError(f"target_prob must be in [0, 1], got {target_prob}")
        self.target_prob = float(target_prob)
        self.generator = generator

    def origin(self, mask: torch.Tensor, h: int, w: int) -> tuple[int, int]:
        """(top, left) of the next crop of an (already padded) h×w frame whose target mask is ``mask``.

        Draws from the generator exactly as :meth:`__call__` does, so code that crops elsewhere (e.g. on
        the training device) with these origins gets the same crops for the same seed.
        """
        ch, cw = self.size
        g = self.generator
        if self.target_prob > 0 and _rand(g) < self.target_prob:
            pts = torch.nonzero(mask.reshape(h, w) > 0)  # (N, 2) target pixels
            if len(pts):
                y, x = (int(v) for v in pts[_randint(len(pts), g)])
                # the picked pixel lands at a random spot of the crop's central half
                oy = ch // 4 + _randint(max(ch // 2, 1), g)
                ox = cw // 4 + _randint(max(cw // 2, 1), g)
                top = min(max(y - oy, 0), h - ch)
                left = min(max(x - ox, 0), w - cw)
                return top, left
        return _randint(h - ch + 1, g), _randint(w - cw + 1, g)

    def __call__(self, item: Sample) -> Sample:
        ch, cw = self.size
        h, w = item["image"].shape[-2:]
        out = item.copy()  # shallow: the tensors are replaced, not modified
        if h < ch or w < cw:
            pad = (0, max(cw - w, 0), 0, max(ch - h, 0))  # (left, right, top, bottom)
            for k in _KEYS:
                if k in out:
                    out[k] = F.pad(out[k], pad, value=0.0)
            h, w = max(h, ch), max(w, cw)
        mask = out.get("mask")
        top, left = self.origin(mask if mask is not None else torch.zeros(h, w), h, w)
        for k in _KEYS:
            if k in out:
                out[k] = out[k][..., top : top + ch, left : left + cw]
        return out

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, target_prob={self.target_prob})"


class RandomFlip:
    """Flip left-right and/or up-down, each with probability ``p``."""

    def __init__(self, horizontal: bool = True, vertical: bool = True, p: float = 0.5,
                 generator: torch.Generator | None = None) -> None:
        self.horizontal, self.vertical, self.p, self.generator = horizontal, vertical, p, generator

    def draw(self) -> list[int]:
        """The dims to flip for the next item (``-1`` left-right, ``-2`` up-down), drawn as :meth:`__call__` does."""
        dims = []
        if self.horizontal and _rand(self.generator) < self.p:
            dims.append(-1)
        if self.vertical and _rand(self.generator) < self.p:
            dims.append(-2)
        return dims

    def __call__(self, item: Sample) -> Sample:
        dims = self.draw()
        if not dims:
            return item
        out = item.copy()  # shallow: the tensors are replaced, not modified
        for k in _KEYS:
            if k in out:
                out[k] = torch.flip(out[k], dims)
        return out

    def __repr__(self) -> str:
        return f"RandomFlip(horizontal={self.horizontal}, vertical={self.vertical}, p={self.p})"


class RandomRot90:
    """Rotate by a random multiple of 90° (swaps H and W for odd turns: use on square crops)."""

    def __init__(self, generator: torch.Generator | None = None) -> None:
        self.generator = generator

    def __call__(self, item: Sample) -> Sample:
        k = _randint(4, self.generator)
        if k == 0:
            return item
        out = item.copy()  # shallow: the tensors are replaced, not modified
        for key in _KEYS:
            if key in out:
                out[key] = torch.rot90(out[key], k, dims=(-2, -1))
        return out

    def __repr__(self) -> str:
        return "RandomRot90()"
