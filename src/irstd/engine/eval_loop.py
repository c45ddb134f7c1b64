"""The evaluation loop: score a model over a loader of padded batches (:func:`run_evaluation`).

Used by the trainer's validation and by :func:`irstd.engine.evaluate_model`.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from ..core.device import autocast
from ..core.padding import crop_to
from ..core.progress import progress_bar
from ..metrics import SegMetrics, SegResult
from ..models import main_logits

__all__ = ["run_evaluation"]


@torch.no_grad()
def run_evaluation(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    loader: DataLoader,
    device: torch.device,
    *,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    metrics: SegMetrics | None = None,
    on_image: Callable[[str, torch.Tensor, torch.Tensor], None] | None = None,
    progress: bool = False,
    desc: str = "eval",
) -> SegResult:
    """Score ``model`` on a loader of padded batches (``pad_collate``), at each image's original size.

    Each frame is run at its own stride-padded size (frames of equal size together), so the scores do not
    depend on the batch size.

    ``on_image(name, logits, mask)`` receives each image's cropped (1, H, W) logits, e.g. to save masks.
    ``model`` may also be any callable mapping a batch to logits, e.g. an :class:`irstd.inference.ModelRunner`.
    """
    if isinstance(model, nn.Module):
        model.eval()
    metrics = SegMetrics() if metrics is None else metrics  # an empty SegMetrics is falsy (__len__)
    for batch in progress_bar(loader, enabled=progress, desc=desc, leave=False):
        images = batch["image"].to(device, non_blocking=True)
        crops: list[torch.Tensor] = [torch.empty(0)] * len(batch["size"])
        for rows, (hp, wp) in _same_size_groups(batch).items():
            # (G, C, hp, wp): these frames' own stride padding, as each would be run alone (the batch's
            # larger constant or replicate pad only extends theirs, so slicing it off is exact)
            x = images[list(rows), :, :hp, :wp]
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device, amp_dtype):
                logits = main_logits(model(x)).float()
            for j, i in enumerate(rows):
                crops[i] = crop_to(logits[j], batch["size"][i])
        masks = [crop_to(batch["mask"][i], size) for i, size in enumerate(batch["size"])]
        metrics.update(crops, masks)
        if on_image is not None:
            for name, lg, mk in zip(batch["name"], crops, masks):
                on_image(name, lg.cpu(), mk)
    return metrics.compute()


def _same_size_groups(batch: dict) -> dict[tuple[int, ...], tuple[int, int]]:
    """Indices of the frames of a padded batch grouped by their own stride-padded size.

    Zero padding up to the batch's largest frame is context a frame alone never sees: a step edge
    next to a small frame raises false alarms inside it, so a score would depend on the batch size
    and on which frames share a batch (a SIRST select list scored IoU 64.49 at batch 4 against 78.57
    one frame at a time). Frames of one padded size still run together. Returns {rows: (hp, wp)}.
    """
    padded = batch.get("padded")
    if padded is None:  # a collate that pads nothing beyond each frame's own size
        return {tuple(range(len(batch["size"]))): tuple(batch["image"].shape[-2:])}
    groups: dict[tuple[int, int], list[int]] = {}
    for i, size in enumerate(padded):
        groups.setdefault(tuple(size), []).append(i)
    return {tuple(rows): size for size, rows in groups.items()}
