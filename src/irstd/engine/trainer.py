"""A small trainer: :func:`train_one_epoch`, :func:`evaluate` and :func:`fit`.

``fit`` writes a run folder::

    <out>/<name>/config.yaml        resolved configuration
    <out>/<name>/log.jsonl, log.csv one row per epoch (loss, lr, throughput, validation metrics)
    <out>/<name>/last.safetensors   weights + metadata after the latest epoch (+ last.state.pt for --resume)
    <out>/<name>/best.safetensors   best validation IoU so far
    <out>/<name>/ema.safetensors    moving average of the weights after the latest epoch (``ema_decay`` > 0)

Every epoch starts by re-seeding all generators from (seed, epoch), so a resumed run draws exactly the
same crops, flips and batches as an uninterrupted one.

Crash safety: every file is replaced atomically, and ``last.state.pt`` (written after the checkpoints)
holds the weights with the optimiser, so whenever the process dies (``kill -9`` included) the run folder
holds a loadable ``last.safetensors`` and a self-consistent resume state. A failed write (disk full)
stops the run with a :class:`~irstd.core.errors.CheckpointError` saying which file failed; the previous
files stay intact.

Under ``torchrun`` (docs/distributed.md) the model is wrapped in ``DistributedDataParallel``, each rank
trains on its share of every global batch, validation is split across ranks and its counts merged,
and rank 0 alone writes the run folder.
"""

from __future__ import annotations

import contextlib
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
from safetensors import SafetensorError
from torch.utils.data import DataLoader

from ..core.device import autocast, resolve_amp, resolve_device
from ..core.distributed import (
    all_gather_object,
    broadcast_buffers,
    collective,
    is_distributed,
    is_main_process,
    process_group,
    rank_device,
    world_size,
)
from ..core.errors import CheckpointError, ConfigError, first_line
from ..core.files import atomic_write, atomic_write_text
from ..core.padding import crop_to
from ..core.progress import progress_bar
from ..core.seeding import epoch_seed, seed_everything
from ..losses import ModelLoss
from ..metrics import SegMetrics, SegResult
from ..models import create_model, folded_offset, logit_bias, main_logits
from ..models.checkpoint import read_checkpoint, save_checkpoint
from .config import TrainConfig
from .data import TrainData, build_train_val, global_batch
from .mining import score_negatives
from .sharding import gather_merged, shard_dataset
from .sync_bn import convert_sync_batchnorm

__all__ = ["train_one_epoch", "evaluate", "fit", "FitResult", "build_optimizer", "build_scheduler", "load_run_config"]

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


@dataclass
class _Run:
    """Everything one training run holds between epochs."""

    cfg: TrainConfig
    run_dir: Path
    device: torch.device
    amp_dtype: torch.dtype | None
    model: nn.Module
    data: TrainData
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler | None
    start_epoch: int = 0
    ema: torch.optim.swa_utils.AveragedModel | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"val_iou": -1.0})
    net: nn.Module | None = None  #: what trains: ``model`` itself alone, its DDP wrapper under torchrun

    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.safetensors"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best.safetensors"

    @property
    def ema_path(self) -> Path:
        return self.run_dir / "ema.safetensors"


def build_ema(model: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel | None:
    """An exponential moving average of ``model``'s weights and buffers (None when ``decay`` is 0)."""
    if decay <= 0:
        return None
    swa = torch.optim.swa_utils
    return swa.AveragedModel(model, multi_avg_fn=swa.get_ema_multi_avg_fn(decay), use_buffers=True)


def fit(cfg: TrainConfig, resume: str | Path | None = None) -> FitResult:
    """Train ``cfg.model`` on ``cfg.data`` (or synthetic data), validating every ``val_every`` epochs.

    ``resume``: a run folder (or its ``last.safetensors``) to continue exactly where it stopped.
    Files are written by the main process only. Under ``torchrun`` it joins (or uses the caller's)
    process group and trains data-parallel: see docs/distributed.md.
    """
    with process_group(cfg.dist_backend, cfg.dist_timeout, resolve_device(cfg.device)):
        run = _start_run(cfg, resume)
        (log.info if is_main_process() else log.debug)(
            "training %s on %s (%d train / %d val images) on %s, amp=%s, global batch %d (%d ranks x %d x %d "
            "accumulation), run folder %s", cfg.model, run.data.description, len(run.data.train), len(run.data.val),
            run.device, run.amp_dtype, global_batch(cfg), world_size(), cfg.batch_size, cfg.grad_accum, run.run_dir,
        )
        for epoch in range(run.start_epoch, cfg.epochs):
            with collective(f"epoch {epoch + 1}"):
                row = _run_epoch(run, epoch)
            run.history.append(row)
            if is_main_process():
                log.info(_format_row(row))
                _save_epoch(run, epoch, row)
        return FitResult(run.run_dir, run.best_path, run.last_path, run.best, run.history)


def _start_run(cfg: TrainConfig, resume: str | Path | None) -> _Run:
    """Build the model, data, optimiser and schedule; restore them when resuming."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = rank_device(resolve_device(cfg.device))
    amp_dtype = resolve_amp(cfg.amp, device)
    seed_everything(cfg.seed)
    model = create_model(cfg.model, **cfg.model_kwargs).to(device)  # fails early on a bad name/arguments
    data = build_train_val(cfg, stride=model.stride, device=str(device))
    run_dir, start_epoch, state = _prepare_run(cfg, resume)
    if state is None and cfg.init_weights:
        _init_weights(model, cfg.init_weights, data.normalization)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.sync_bn and is_distributed():
        model = convert_sync_batchnorm(model, device)  # before the optimiser: it keeps the same Parameters
    optimizer = build_optimizer(cfg, model.parameters())
    run = _Run(
        cfg, run_dir, device, amp_dtype, model, data,
        ModelLoss(**cfg.resolve_loss()),
        optimizer, build_scheduler(cfg, optimizer),
        torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None, start_epoch,
        build_ema(model, cfg.ema_decay),
    )
    if state is not None:
        _restore(run, state)
    run.net = _parallel(model, device)
    return run


def _init_weights(model: nn.Module, spec: str, normalization: tuple[float, float]) -> None:
    """Load ``spec`` (a checkpoint path, a shipped ``model.tag`` or a URL; its SHA-256 checked where
    known) into ``model`` before the first epoch: fine-tuning. The optimiser and schedule start fresh.
    A threshold folded into the weights (``irstd operating-point``) is taken out again first."""
    weights, meta = read_checkpoint(spec)
    try:
        model.load_state_dict(weights)  # copies (and casts fp16 files) into the model's fp32 parameters
    except RuntimeError as exc:
        raise CheckpointError(f"init_weights {spec}: its weights ({meta['model_name']}) do not fit this "
                              f"model ({first_line(exc)})") from None
    offset = folded_offset(meta)
    if offset:  # train on the logits the model learnt, not on its shifted operating point
        with torch.no_grad():
            logit_bias(model).add_(offset)
        log.info("init_weights %s: its folded operating point (logit %+.2f) undone", spec, offset)
    theirs = tuple(meta.get("normalization") or ())
    if theirs and any(abs(a - b) > 1e-3 * max(1.0, abs(b)) for a, b in zip(theirs, normalization)):
        # the run normalises with its own training data's statistics, which the saved checkpoints record
        log.warning("init_weights %s was trained with normalisation %s, this run's data has %s",
                    spec, tuple(round(x, 3) for x in theirs), tuple(round(x, 3) for x in normalization))
    log.info("starting from the weights of %s (%s)", spec, meta["model_name"])


def _parallel(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel under a process group (rank 0's weights are
    broadcast to every rank on wrapping), else ``model`` itself."""
    if not is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _restore(run: _Run, state: dict[str, Any]) -> None:
    """Load the weights, optimiser, schedule, scaler and history saved after the last finished epoch."""
    # the state's own weights match its optimiser even when a kill landed between the two writes;
    # older run folders have none and use last.safetensors
    weights = state["model"] if "model" in state else read_checkpoint(run.last_path)[0]
    try:
        run.model.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(f"cannot resume {run.run_dir}: its weights do not fit model {run.cfg.model!r} ({first_line(exc)})") from None
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    if run.scaler is not None and state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])
    run.history, run.best = state["history"], state["best"]
    before = run.history[-1].get("global_batch") if run.history else None
    if before is not None and before != global_batch(run.cfg):
        log.warning("resuming %s with a global batch of %d images instead of %d: the run will not continue "
                    "exactly as it would have", run.run_dir, global_batch(run.cfg), before)
    if run.ema is not None and state.get("ema"):
        run.ema.load_state_dict(state["ema"])
    if run.data.negatives is not None:
        # the mined locations are state: the next epochs draw from them exactly as the straight run does;
        # a run that stopped at its last epoch skipped that epoch's mining, which the same weights redo now
        run.data.negatives.set_pool(state.get("negative_pool") or [], state.get("negative_pool_epoch"))
        if _mining_due(run.cfg, run.start_epoch) and run.data.negatives.mined_at != run.start_epoch:
            log.info("mining the negative frames after epoch %d (not done before the run stopped)", run.start_epoch)
            _mine(run, run.start_epoch)
    log.info("resumed %s at epoch %d", run.run_dir, run.start_epoch)


def _run_epoch(run: _Run, epoch: int) -> dict[str, Any]:
    """Train one epoch (then validate when due); returns the epoch's log row."""
    cfg = run.cfg
    seed_everything(epoch_seed(cfg.seed, epoch))  # exact resume: each epoch's randomness depends on (seed, epoch) only
    row: dict[str, Any] = {"epoch": epoch + 1, "lr": run.optimizer.param_groups[0]["lr"]}
    stats = train_one_epoch(
        run.net or run.model, run.data.train_loader(epoch), run.optimizer, run.loss_fn, run.device,
        amp_dtype=run.amp_dtype, scaler=run.scaler, grad_clip=cfg.grad_clip, channels_last=cfg.channels_last,
        progress=cfg.progress and is_main_process(), desc=f"epoch {epoch + 1}/{cfg.epochs}",
        accumulation=cfg.grad_accum, ema=run.ema,
    )
    run.scheduler.step()
    row.update(_merge_epoch_stats(stats))
    row.update({"global_batch": global_batch(cfg), "world_size": world_size()})
    broadcast_buffers(run.model)  # one set of BatchNorm statistics (rank 0's) to validate and save
    if len(run.data.val) and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs):
        row.update({f"val_{k}": v for k, v in _validate(run).as_dict().items()})
    neg = cfg.negatives_config
    # not after the last epoch (nothing would use it): a run resumed with more epochs re-mines then
    if _mining_due(cfg, epoch + 1) and epoch + 1 < cfg.epochs:
        row.update(_mine(run, epoch + 1))
    return row


def _mining_due(cfg: TrainConfig, epochs_done: int) -> bool:
    """Whether the negative frames are mined once ``epochs_done`` epochs have finished."""
    neg = cfg.negatives_config
    return neg is not None and neg.mining_every > 0 and epochs_done > 0 and epochs_done % neg.mining_every == 0


def _mine(run: _Run, epochs_done: int) -> dict[str, Any]:
    """Score the negative frames with the current weights; the following epochs crop around the peaks.
    Every rank mines the same frames with the same weights, so every rank holds the same pool."""
    negatives = run.data.negatives
    assert negatives is not None and run.cfg.negatives_config is not None
    start = time.perf_counter()
    pool = score_negatives(run.model, negatives.frames, run.data.normalization, run.model.stride, run.device,
                           top=run.cfg.negatives_config.mining_top, radius=run.cfg.crop_size // 2,
                           amp_dtype=run.amp_dtype)
    negatives.set_pool(pool, epochs_done)
    scores = [s for *_, s in pool]
    return {"mined": len(pool), "mined_max_score": max(scores) if scores else 0.0,
            "mining_seconds": time.perf_counter() - start}


def _merge_epoch_stats(stats: dict[str, float]) -> dict[str, float]:
    """Loss over every rank's images, images/s of the whole job, seconds of the slowest rank."""
    parts = all_gather_object((stats["loss"] * stats["images"], stats["images"], stats["seconds"]))
    loss_sum, images = sum(p[0] for p in parts), sum(p[1] for p in parts)
    seconds = max(p[2] for p in parts)
    return {"loss": loss_sum / max(images, 1), "images_per_s": images / max(seconds, 1e-9), "seconds": seconds}


def _validate(run: _Run) -> SegResult:
    """Validation metrics; under a process group each rank scores its block and the counts are merged
    in rank order, which equals one process scoring every image in order."""
    shard = shard_dataset(run.data.val)
    metrics = SegMetrics()
    if len(shard):  # type: ignore[arg-type]
        evaluate(run.model, run.data.val_loader(shard), run.device, amp_dtype=run.amp_dtype,
                 channels_last=run.cfg.channels_last, metrics=metrics)
    return gather_merged(metrics).compute()


def _save_epoch(run: _Run, epoch: int, row: dict[str, Any]) -> None:
    """Write last (and best, when validation improved), the resume state and the logs.

    A failed write raises :class:`CheckpointError` naming the file; every earlier file is intact.
    """
    try:
        _write_epoch(run, epoch, row)
    except OSError as exc:
        where = exc.filename or run.run_dir
        raise CheckpointError(
            f"could not write {where} after epoch {epoch + 1} ({exc.strerror or exc}); the files of the last "
            f"saved epoch are intact: free the space and continue with --resume {run.run_dir}") from None


def _write_epoch(run: _Run, epoch: int, row: dict[str, Any]) -> None:
    cfg, norm, rng = run.cfg.to_dict(), run.data.normalization, run.data.input_range
    meta_metrics = {k: v for k, v in row.items() if k.startswith("val_")}
    _checkpoint(run.last_path, run.model, normalization=norm, config=cfg, metrics=meta_metrics,
                epoch=epoch + 1, input_range=rng)
    val_iou = row.get("val_iou", float("nan"))
    best = run.best
    if not len(run.data.val) or (val_iou == val_iou and val_iou > run.best["val_iou"]):
        best = {"val_iou": val_iou if val_iou == val_iou else -1.0, "epoch": epoch + 1, **meta_metrics}
        _checkpoint(run.best_path, run.model, normalization=norm, config=cfg, metrics=best,
                    epoch=epoch + 1, input_range=rng)
    run.best = best  # only once written: a failed write leaves the record matching the files
    train_state = {
        "epoch": epoch + 1,
        "model": {k: v.detach().to("cpu").clone() for k, v in run.model.state_dict().items()},
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict() if run.scaler is not None else None,
        "history": run.history,
        "best": run.best,
        "ema": run.ema.state_dict() if run.ema is not None else None,
        "negative_pool": list(run.data.negatives.pool) if run.data.negatives is not None else None,
        "negative_pool_epoch": run.data.negatives.mined_at if run.data.negatives is not None else None,
    }
    if run.ema is not None:
        _checkpoint(run.ema_path, run.ema.module, normalization=norm, config=cfg, epoch=epoch + 1,
                    metrics={"ema_decay": run.cfg.ema_decay}, input_range=rng)
    _atomic(_state_path(run.last_path), lambda tmp: torch.save(train_state, tmp))
    _write_logs(run.run_dir, run.history)


def _checkpoint(path: Path, model: nn.Module, **kwargs: Any) -> None:
    """:func:`save_checkpoint`, with the file named in a failure."""
    try:
        save_checkpoint(path, model, **kwargs)
    except OSError as exc:
        exc.filename = exc.filename or str(path)
        raise
    except SafetensorError as exc:  # safetensors reports I/O failures (ENOSPC…) as its own error
        raise OSError(None, str(exc), str(path)) from exc


def _atomic(path: Path, write: Callable[[str], None]) -> None:
    try:
        atomic_write(path, write)
    except OSError as exc:
        exc.filename = exc.filename or str(path)
        raise


def _prepare_run(cfg: TrainConfig, resume: str | Path | None) -> tuple[Path, int, dict[str, Any] | None]:
    """Create (or reopen, for ``resume``) the run folder; returns it, the first epoch and saved state."""
    if resume is None:
        name = cfg.name or f"{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}"
        name = all_gather_object(name)[0]  # rank 0's timestamp: every rank names the same folder
        run_dir = Path(cfg.out) / name
        if (run_dir / "last.safetensors").exists():
            raise ConfigError(f"run folder {run_dir} already holds a run; use --resume {run_dir} or another --name")
        if is_main_process():
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        return run_dir, 0, None
    resume = Path(resume)
    run_dir = resume.parent if resume.is_file() else resume
    state_file = _state_path(run_dir / "last.safetensors")
    if not state_file.is_file():
        raise CheckpointError(f"cannot resume: {state_file} not found (is {run_dir} a run folder?)")
    try:
        state = torch.load(state_file, map_location="cpu", weights_only=False)
        int(state["epoch"])
    except Exception as exc:  # noqa: BLE001 — a damaged state file must not end in a traceback
        raise CheckpointError(f"cannot resume: {state_file} is damaged ({type(exc).__name__}: {exc})") from None
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
    atomic_write_text(run_dir / "log.jsonl", "".join(json.dumps(r) + "\n" for r in history))
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

