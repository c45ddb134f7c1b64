"""Hard-negative mining: where on target-free frames the current model fires most.

:func:`mine_locations` is the pure part (a probability map in, its strongest separated peaks out);
:func:`score_negatives` runs a model over whole negative frames and mines each one.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from ..core.device import autocast
from ..core.padding import crop_to, pad_to_multiple
from ..data.items import normalize
from ..models import main_logits

__all__ = ["mine_locations", "score_negatives", "MinedLocation"]

log = logging.getLogger(__name__)

#: (frame index, y, x, score): one mined false alarm
MinedLocation = tuple[int, int, int, float]


def mine_locations(prob_map: torch.Tensor | np.ndarray, top: int, radius: int,
                   min_score: float = 0.0) -> list[tuple[int, int, float]]:
    """The ``top`` strongest peaks of an (H, W) score map as ``(y, x, score)``, highest first.

    Greedy non-maximum suppression: take the maximum (the first in row-major order on a tie), then
    discard every pixel within ``radius`` of it (Chebyshev distance: the square a crop of side
    ``2·radius`` centred there would cover), repeat. Peaks must score above ``min_score``; fewer than
    ``top`` come back when the map runs out of them.
    """
    if top < 1 or radius < 0:
        raise ValueError(f"top must be >= 1 and radius >= 0, got top={top}, radius={radius}")
    p = torch.as_tensor(prob_map).detach().to("cpu", torch.float32).clone()
    if p.ndim != 2:
        raise ValueError(f"mine_locations expects an (H, W) map, got shape {tuple(p.shape)}")
    h, w = p.shape
    out: list[tuple[int, int, float]] = []
    for _ in range(top):
        flat = int(torch.argmax(p))  # first maximum on ties: deterministic
        score = float(p.view(-1)[flat])
        if not score > min_score:  # also stops on -inf (all suppressed) and NaN
            break
        y, x = divmod(flat, w)
        out.append((y, x, score))
        p[max(0, y - radius): y + radius + 1, max(0, x - radius): x + radius + 1] = float("-inf")
    return out


@torch.no_grad()
def score_negatives(model: nn.Module, frames: list[np.ndarray], normalization: tuple[float, float],
                    stride: int, device: torch.device, *, top: int, radius: int,
                    amp_dtype: torch.dtype | None = None,
                    on_frame: Callable[[int], None] | None = None) -> list[MinedLocation]:
    """Score each whole frame (native resolution, padded to ``stride``) in eval mode and mine it.

    Returns every frame's peaks as ``(frame, y, x, score)``, frames in order, each frame's peaks by
    score. The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    found: list[MinedLocation] = []
    try:
        for i, frame in enumerate(frames):
            x = torch.from_numpy(normalize(frame, normalization))[None, None].to(device)  # (1, 1, H, W)
            x, size = pad_to_multiple(x, stride)
            with autocast(device, amp_dtype):
                logits = main_logits(model(x)).float()
            prob = torch.sigmoid(crop_to(logits, size))[0, 0]  # (H, W)
            found.extend((i, y, xx, s) for y, xx, s in mine_locations(prob, top, radius))
            if on_frame is not None:
                on_frame(i)
    finally:
        model.train(was_training)
    return found
