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

    ``on_image(name, logits, mask)`` receives each image's cropped (1, H, W) logits, e.g. to save masks.
    ``model`` may also be any callable mapping a batch to logits, e.g. an :class:`irstd.inference.ModelRunner`.
    """
    if isinstance(model, nn.Module):
        model.eval()
    metrics = SegMetrics() if metrics is None else metrics  # an empty SegMetrics is falsy (__len__)
    for batch in progress_bar(loader, enabled=progress, desc=desc, leave=False):
        images = batch["image"].to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp_dtype):
            logits = main_logits(model(images)).float()
        crops = [crop_to(logits[i], size) for i, size in enumerate(batch["size"])]
        masks = [crop_to(batch["mask"][i], size) for i, size in enumerate(batch["size"])]
        metrics.update(crops, masks)
        if on_image is not None:
            for name, lg, mk in zip(batch["name"], crops, masks):
                on_image(name, lg.cpu(), mk)
    return metrics.compute()
