"""The epoch loop: one pass over the training batches (:func:`train_one_epoch`)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from ..core.device import autocast
from ..core.progress import progress_bar

__all__ = ["train_one_epoch"]


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    device: torch.device,
    *,
    amp_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    grad_clip: float | None = None,
    channels_last: bool = False,
    progress: bool = False,
    desc: str = "train",
    accumulation: int = 1,
    ema: torch.optim.swa_utils.AveragedModel | None = None,
) -> dict[str, float]:
    """One pass over ``loader``; returns mean loss, images, images/s and seconds.

    ``accumulation`` micro-batches make one optimiser step (their losses averaged). A
    ``DistributedDataParallel`` model all-reduces its gradients on the last micro-batch of each step only. ``ema`` is updated after
    every optimiser step.
    """
    model.train()
    total, n_images, start = 0.0, 0, time.perf_counter()
    n_batches = len(loader)
    bar = progress_bar(loader, enabled=progress, desc=desc, leave=False)
    for i, batch in enumerate(bar):
        images = batch["image"].to(device, non_blocking=True)  # (B, 1, crop, crop)
        masks = batch["mask"].to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        steps = (i + 1) % accumulation == 0 or i + 1 == n_batches
        # DDP: skip the gradient all-reduce on micro-batches that do not step
        sync = model.no_sync() if not steps and hasattr(model, "no_sync") else contextlib.nullcontext()
        with sync:
            with autocast(device, amp_dtype):
                output = model(images)
            # the loss runs in fp32: SoftIoU sums over many pixels
            output = _to_float(output)
            loss = loss_fn(output, masks)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} (lower the learning rate or disable amp)")
            if i % accumulation == 0:
                optimizer.zero_grad(set_to_none=True)
            scaled = loss / accumulation if accumulation > 1 else loss
            if scaler is not None:
                scaler.scale(scaled).backward()
            else:
                scaled.backward()
        if steps:
            if scaler is not None:
                scaler.unscale_(optimizer)
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            if ema is not None:
                ema.update_parameters(model)
        total += loss.item() * images.shape[0]
        n_images += images.shape[0]
        elapsed = time.perf_counter() - start
        bar.set_postfix(loss=f"{total / n_images:.4f}", img_s=f"{n_images / elapsed:.1f}")
    seconds = time.perf_counter() - start
    return {"loss": total / max(n_images, 1), "images": n_images, "images_per_s": n_images / max(seconds, 1e-9),
            "seconds": seconds}


def _to_float(output: torch.Tensor | dict[str, Any]) -> torch.Tensor | dict[str, Any]:
    if isinstance(output, torch.Tensor):
        return output.float()
    return {k: [t.float() for t in v] if isinstance(v, (list, tuple)) else v.float() for k, v in output.items()}
