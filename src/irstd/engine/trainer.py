"""A small trainer: :func:`train_one_epoch`, :func:`evaluate` and :func:`fit`.

``fit`` writes a run folder::

    <out>/<name>/config.yaml        resolved configuration
    <out>/<name>/log.jsonl, log.csv one row per epoch (loss, lr, throughput, validation metrics)
    <out>/<name>/last.safetensors   weights + metadata after the latest epoch (+ last.state.pt for --resume)
    <out>/<name>/best.safetensors   best validation IoU so far

Every epoch starts by re-seeding all generators from (seed, epoch), so a resumed run draws exactly the
same crops, flips and batches as an uninterrupted one.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
import torch.nn as nn
import yaml
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..errors import CheckpointError, ConfigError
from ..losses import ModelLoss
from ..metrics import SegMetrics, SegResult
from ..models import create_model, main_logits
from ..padding import crop_to
from .checkpoint import atomic_write, load_model, read_checkpoint, save_checkpoint
from .config import TrainConfig
from .data import build_train_val
from .runtime import autocast, resolve_amp, resolve_device, seed_everything

__all__ = ["train_one_epoch", "evaluate", "fit", "FitResult", "build_optimizer", "build_scheduler"]

log = logging.getLogger(__name__)


def build_optimizer(cfg: TrainConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD (momentum, Nesterov) from the config."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True)


def build_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-epoch LR factor: linear warm-up, then constant, cosine (down to ``min_lr``) or multistep."""

    def factor(epoch: int) -> float:
        if epoch < cfg.warmup_epochs:
            return (epoch + 1) / (cfg.warmup_epochs + 1)
        if cfg.scheduler == "cosine":
            span = max(1, cfg.epochs - cfg.warmup_epochs)
            t = min(1.0, (epoch - cfg.warmup_epochs) / span)
            floor = min(cfg.min_lr / cfg.lr, 1.0)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
        if cfg.scheduler == "multistep":
            return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


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
) -> dict[str, float]:
    """One pass over ``loader``; returns mean loss, images/s and seconds."""
    model.train()
    total, n_images, start = 0.0, 0, time.perf_counter()
    bar = tqdm(loader, desc=desc, leave=False, disable=not progress, dynamic_ncols=True)
    for batch in bar:
        images = batch["image"].to(device, non_blocking=True)  # (B, 1, crop, crop)
        masks = batch["mask"].to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp_dtype):
            output = model(images)
        # the loss runs in fp32: SoftIoU sums over many pixels
        output = _to_float(output)
        loss = loss_fn(output, masks)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} (lower the learning rate or disable amp)")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        total += loss.item() * images.shape[0]
        n_images += images.shape[0]
        elapsed = time.perf_counter() - start
        bar.set_postfix(loss=f"{total / n_images:.4f}", img_s=f"{n_images / elapsed:.1f}")
    seconds = time.perf_counter() - start
    return {"loss": total / max(n_images, 1), "images_per_s": n_images / max(seconds, 1e-9), "seconds": seconds}


def _to_float(output: torch.Tensor | dict[str, Any]) -> torch.Tensor | dict[str, Any]:
    if isinstance(output, torch.Tensor):
        return output.float()
    return {k: [t.float() for t in v] if isinstance(v, (list, tuple)) else v.float() for k, v in output.items()}


@torch.no_grad()
def evaluate(
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
    for batch in tqdm(loader, desc=desc, leave=False, disable=not progress, dynamic_ncols=True):
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


@dataclass
class FitResult:
    """What :func:`fit` produced."""

    run_dir: Path
    best_path: Path
    last_path: Path
    best_metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


def _state_path(ckpt: Path) -> Path:
    return ckpt.with_suffix(".state.pt")


def fit(cfg: TrainConfig, resume: str | Path | None = None) -> FitResult:
    """Train ``cfg.model`` on ``cfg.data`` (or synthetic data), validating every ``val_every`` epochs.

    ``resume``: a run folder (or its ``last.safetensors``) to continue exactly where it stopped.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    amp_dtype = resolve_amp(cfg.amp, device)
    seed_everything(cfg.seed)
    model = create_model(cfg.model, **cfg.model_kwargs).to(device)  # fails early on a bad name/arguments
    data = build_train_val(cfg, stride=model.stride, device=str(device))
    run_dir, start_epoch, state = _prepare_run(cfg, resume)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    loss_fn = ModelLoss(cfg.loss, aux_weight=cfg.aux_weight, edge_weight=cfg.edge_weight)
    optimizer = build_optimizer(cfg, model.parameters())
    scheduler = build_scheduler(cfg, optimizer)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    history: list[dict[str, Any]] = []
    best = {"val_iou": -1.0}
    if state is not None:
        weights, _ = read_checkpoint(run_dir / "last.safetensors")
        model.load_state_dict(weights)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        history, best = state["history"], state["best"]
        log.info("resumed %s at epoch %d", run_dir, start_epoch)
    log.info(
        "training %s on %s (%d train / %d val images) on %s, amp=%s, run folder %s",
        cfg.model, data.description, len(data.train), len(data.val), device, amp_dtype, run_dir,
    )
    last_path, best_path = run_dir / "last.safetensors", run_dir / "best.safetensors"
    for epoch in range(start_epoch, cfg.epochs):
        seed_everything(cfg.seed * 100_003 + epoch)  # exact resume: each epoch's randomness depends on (seed, epoch) only
        row: dict[str, Any] = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"]}
        stats = train_one_epoch(
            model, data.train_loader(epoch), optimizer, loss_fn, device,
            amp_dtype=amp_dtype, scaler=scaler, grad_clip=cfg.grad_clip, channels_last=cfg.channels_last,
            progress=cfg.progress, desc=f"epoch {epoch + 1}/{cfg.epochs}",
        )
        scheduler.step()
        row.update({"loss": stats["loss"], "images_per_s": stats["images_per_s"], "seconds": stats["seconds"]})
        is_last = epoch + 1 == cfg.epochs
        if len(data.val) and ((epoch + 1) % cfg.val_every == 0 or is_last):
            result = evaluate(model, data.val_loader(), device, amp_dtype=amp_dtype, channels_last=cfg.channels_last)
            row.update({f"val_{k}": v for k, v in result.as_dict().items()})
        history.append(row)
        log.info(_format_row(row))
        meta_metrics = {k: v for k, v in row.items() if k.startswith("val_")}
        save_checkpoint(last_path, model, normalization=data.normalization, config=cfg.to_dict(), metrics=meta_metrics, epoch=epoch + 1)
        val_iou = row.get("val_iou", float("nan"))
        if not len(data.val) or (val_iou == val_iou and val_iou > best["val_iou"]):
            best = {"val_iou": val_iou if val_iou == val_iou else -1.0, "epoch": epoch + 1, **meta_metrics}
            save_checkpoint(best_path, model, normalization=data.normalization, config=cfg.to_dict(), metrics=best, epoch=epoch + 1)
        train_state = {
            "epoch": epoch + 1,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "history": history,
            "best": best,
        }
        atomic_write(_state_path(last_path), lambda tmp: torch.save(train_state, tmp))
        _write_logs(run_dir, history)
    return FitResult(run_dir, best_path, last_path, best, history)


def _prepare_run(cfg: TrainConfig, resume: str | Path | None) -> tuple[Path, int, dict[str, Any] | None]:
    """Create (or reopen, for ``resume``) the run folder; returns it, the first epoch and saved state."""
    if resume is None:
        name = cfg.name or f"{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir = Path(cfg.out) / name
        if (run_dir / "last.safetensors").exists():
            raise ConfigError(f"run folder {run_dir} already holds a run; use --resume {run_dir} or another --name")
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_dir / "config.yaml", lambda tmp: Path(tmp).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False)))
        return run_dir, 0, None
    resume = Path(resume)
    run_dir = resume.parent if resume.is_file() else resume
    state_file = _state_path(run_dir / "last.safetensors")
    if not state_file.is_file():
        raise CheckpointError(f"cannot resume: {state_file} not found (is {run_dir} a run folder?)")
    state = torch.load(state_file, map_location="cpu", weights_only=False)
    if state["epoch"] >= cfg.epochs:
        raise ConfigError(f"{run_dir} already finished {state['epoch']} of {cfg.epochs} epochs; raise epochs to continue")
    return run_dir, int(state["epoch"]), state


def _format_row(row: dict[str, Any]) -> str:
    parts = [f"epoch {row['epoch']}", f"loss {row['loss']:.4f}", f"lr {row['lr']:.2e}", f"{row['images_per_s']:.1f} img/s"]
    if "val_iou" in row:
        parts.append(f"val IoU {100 * row['val_iou']:.2f} nIoU {100 * row['val_niou']:.2f} Pd {100 * row['val_pd']:.2f} Fa {row['val_fa']:.1f}e-6")
    return ", ".join(parts)


def _write_logs(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """Rewrite log.jsonl and log.csv from the whole history (small; keeps resume consistent)."""
    atomic_write(run_dir / "log.jsonl", lambda tmp: Path(tmp).write_text("".join(json.dumps(r) + "\n" for r in history)))
    keys = list(dict.fromkeys(k for r in history for k in r))

    def write_csv(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(history)

    atomic_write(run_dir / "log.csv", write_csv)


def load_run_config(run_dir: str | Path) -> TrainConfig:
    """The resolved config saved in a run folder."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise CheckpointError(f"{path} not found (is {run_dir} a run folder?)")
    return TrainConfig.from_dict(yaml.safe_load(path.read_text()) or {}, str(path))


# re-exported for users of the engine
__all__ += ["load_model", "load_run_config"]
