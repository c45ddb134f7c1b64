"""The trainer: :func:`fit` trains a model epoch by epoch and keeps its run folder.

The parts live beside it, one job a file: the optimiser and schedule (:mod:`.optimisation`), the epoch
loop (:mod:`.epoch`), the validation loop (:mod:`.eval_loop`), the run folder's files
(:mod:`.run_folder`) and the resume state (:mod:`.resume`).

Every epoch starts by re-seeding all generators from (seed, epoch), so a resumed run draws exactly the
same crops, flips and batches as an uninterrupted one.

Crash safety: the files of an epoch (checkpoints, ``last.state.pt``, logs) are staged under temporary
names and renamed into place together (:meth:`RunFolder.epoch_files`), so whenever the process dies
(``kill -9`` included) the run folder holds one epoch's whole set once reopened (an interrupted rename
is finished, stale temporaries removed). A failed write (disk full, read-only folder, torch's own write
errors) stops the run with a one-line :class:`~irstd.core.errors.CheckpointError` saying which file
failed and why; the previous epoch's files stay intact.

Under ``torchrun`` (docs/distributed.md) :func:`fit` joins the process group (the one place a training
run opens it), the model is wrapped in ``DistributedDataParallel``, each rank trains on its share of
every global batch, validation is split across ranks and its counts merged, and rank 0 alone writes
the run folder.
"""

from __future__ import annotations

import copy
import dataclasses
import errno
import gc
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
import yaml
from safetensors import SafetensorError

from ..core.device import resolve_amp, resolve_device
from ..core.distributed import (
    all_gather_object,
    broadcast_buffers,
    broadcast_object,
    collective,
    is_distributed,
    is_main_process,
    process_group,
    rank_device,
    world_size,
)
from ..core.errors import CheckpointError, ConfigError, first_line
from ..core.files import FileSet
from ..core.seeding import epoch_seed, seed_everything
from ..losses import ModelLoss
from ..metrics import METRIC_COLUMNS, SegMetrics, SegResult
from ..models import create_model, folded_offset, logit_bias
from ..models.checkpoint import checkpoint_writer, read_checkpoint
from ..models.widen import WidenError, is_tiling, widen_into
from .config import TrainConfig
from .data import TrainData, build_train_val, global_batch, inherit_split_seed
from .epoch import train_one_epoch
from .eval_loop import run_evaluation
from .mining import score_negatives
from .optimisation import build_ema, build_optimizer, build_scheduler
from .resume import TrainingParts, open_for_resume, restore_state, stage_state, state_of
from .run_folder import RunFolder, load_run_config
from .selection import improves
from .sharding import gather_merged, shard_dataset
from .sync_bn import convert_sync_batchnorm

__all__ = ["fit", "FitResult", "load_run_config"]

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """What :func:`fit` produced."""

    run_dir: Path
    best_path: Path
    last_path: Path
    best_metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    main_process: bool = True  #: False on the ranks of a torchrun job other than 0 (which write nothing)


@dataclass
class _Run:
    """Everything one training run holds between epochs."""

    cfg: TrainConfig
    folder: RunFolder
    device: torch.device
    amp_dtype: torch.dtype | None
    data: TrainData
    loss_fn: nn.Module
    parts: TrainingParts
    start_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"val_iou": -1.0})
    net: nn.Module | None = None  #: what trains: ``model`` itself alone, its DDP wrapper under torchrun
    #: the starting weights while they are the best (``validate_start``), until best.safetensors holds them
    start_model: nn.Module | None = None

    @property
    def model(self) -> nn.Module:
        return self.parts.model

    @property
    def selected(self) -> nn.Module:
        """The weights validated and written as best: the moving average under ``select_weights: ema``."""
        ema = self.parts.ema
        return ema.module if self.cfg.select_weights == "ema" and ema is not None else self.model


def fit(cfg: TrainConfig, resume: str | Path | None = None) -> FitResult:
    """Train ``cfg.model`` on ``cfg.data`` (or synthetic data), validating every ``val_every`` epochs.

    ``resume``: a run folder (or its ``last.safetensors``) to continue exactly where it stopped.
    Files are written by the main process only. Under ``torchrun`` it joins (or uses the caller's)
    process group and trains data-parallel: see docs/distributed.md.
    """
    with process_group(cfg.dist_backend, cfg.dist_timeout, resolve_device(cfg.device)):
        run = _start_run(cfg, resume)
        try:
            return _train_epochs(run)
        finally:
            _release_parallel(run)


def _train_epochs(run: _Run) -> FitResult:
    """The epochs from ``run.start_epoch``: train, log, write the epoch's files, stop every rank together."""
    cfg = run.cfg
    (log.info if is_main_process() else log.debug)(
        "training %s on %s (%d train / %d val images) on %s, amp=%s, global batch %d (%d ranks x %d x %d "
        "accumulation), run folder %s", cfg.model, run.data.description, len(run.data.train), len(run.data.val),
        run.device, run.amp_dtype, global_batch(cfg), world_size(), cfg.batch_size, cfg.grad_accum, run.folder.path,
    )
    for epoch in range(run.start_epoch, cfg.epochs):
        with collective(f"epoch {epoch + 1}"):
            row = _run_epoch(run, epoch)
        run.history.append(row)
        failed: CheckpointError | None = None
        if is_main_process():
            log.info(_format_row(row))
            try:
                _save_epoch(run, epoch, row)
            except CheckpointError as exc:
                failed = exc
        # rank 0's failure to write (a full disk) ends every rank with its one line; without this the
        # others went on to the next epoch and waited there for rank 0 until the process-group timeout
        message = broadcast_object(None if failed is None else str(failed))
        if message is not None:
            try:
                raise failed or CheckpointError(message)
            finally:
                del failed  # this frame holding the exception that holds this frame: a cycle only the GC frees
    return FitResult(run.folder.path, run.folder.best, run.folder.last, run.best, run.history, is_main_process())


def _release_parallel(run: _Run) -> None:
    """Free the DistributedDataParallel wrapper while the interpreter is fully alive.

    A run that ended in an error kept the wrapper in a reference cycle, so the collector freed it only
    during interpreter exit. There a gloo worker thread that released the last reference to a collective's
    tensors needed the GIL of an interpreter shutting down, and the process aborted ("terminate called
    without an active exception", exit status -6 instead of the run's own); docs/distributed.md.
    """
    if run.net is None or run.net is run.model:
        return
    run.net = None
    gc.collect()  # whatever else of the wrapper sat in a cycle goes now, not at exit


def _start_run(cfg: TrainConfig, resume: str | Path | None) -> _Run:
    """Build the model, data, optimiser and schedule; restore them when resuming."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = rank_device(resolve_device(cfg.device))
    amp_dtype = resolve_amp(cfg.amp, device)
    seed_everything(cfg.seed)
    model = create_model(cfg.model, **cfg.model_kwargs).to(device)  # fails early on a bad name/arguments
    start = read_checkpoint(cfg.init_weights) if resume is None and cfg.init_weights else None
    if start is not None:  # before the split: a run on the start's list keeps the start's select frames
        cfg = inherit_split_seed(cfg, start[1].get("config"), str(cfg.init_weights))
    elif resume is not None and cfg.split_seed is None:  # the select frames the run started with
        cfg = dataclasses.replace(cfg, split_seed=_saved_split_seed(resume))
    data = build_train_val(cfg, stride=model.stride, device=str(device))
    folder, start_epoch, state = _open_folder(cfg, resume)
    if data.select_names and is_main_process() and (state is None or not folder.select.exists()):
        folder.write_select(data.select_names)  # irstd evaluate --split-file RUN/select.txt scores them again
    if state is None and start is not None:
        _init_weights(model, str(cfg.init_weights), start, data.normalization, cfg.widen_split_noise, cfg.seed)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.sync_bn and is_distributed():
        model = convert_sync_batchnorm(model, device)  # before the optimiser: it keeps the same Parameters
    optimizer = build_optimizer(cfg, model.parameters())
    parts = TrainingParts(
        model, optimizer, build_scheduler(cfg, optimizer),
        torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None,
        build_ema(model, cfg.ema_decay), data.negatives,
    )
    run = _Run(cfg, folder, device, amp_dtype, data, ModelLoss(**cfg.resolve_loss()), parts, start_epoch)
    if state is not None:
        _restore(run, state)
    elif cfg.validate_start and len(data.val):
        _validate_start(run)
    run.net = _parallel(model, device)
    return run


def _saved_split_seed(resume: str | Path) -> int | None:
    """``split_seed`` of the run folder being resumed (None where unset or unreadable: the resume reports it)."""
    try:
        return RunFolder.of(resume).read_config().split_seed
    except (CheckpointError, ConfigError, OSError, yaml.YAMLError):
        return None


def _validate_start(run: _Run) -> None:
    """Score the starting weights as epoch 0 (a log row and the best record): an epoch is chosen only
    when it beats them under ``select_metric``; while none does, best.safetensors holds the start."""
    row = {"epoch": 0, **{f"val_{k}": v for k, v in _validate(run).as_dict().items()}}
    run.history.append(row)
    run.best = {k: v for k, v in row.items() if k.startswith("val_")} | {"epoch": 0}
    run.start_model = copy.deepcopy(run.model)  # written as best with epoch 1's files unless epoch 1 beats it
    if is_main_process():
        log.info("epoch 0 (the starting weights): val %s",
                 " ".join(METRIC_COLUMNS[k].short(row[f"val_{k}"]) for k in ("iou", "niou", "pd", "fa")))


def _open_folder(cfg: TrainConfig, resume: str | Path | None) -> tuple[RunFolder, int, dict[str, Any] | None]:
    """Create (or reopen, for ``resume``) the run folder; returns it, the first epoch and saved state."""
    if resume is not None:
        return open_for_resume(resume, cfg.epochs)
    name = cfg.name or f"{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    name = all_gather_object(name)[0]  # rank 0's timestamp: every rank names the same folder
    folder = RunFolder(Path(cfg.out) / name)
    if folder.holds_run():
        raise ConfigError(f"run folder {folder.path} already holds a run; use --resume {folder.path} or another --name")
    if is_main_process():
        folder.recover()
        if folder.holds_run():  # an epoch whose renames a kill cut short, finished now
            raise ConfigError(f"run folder {folder.path} already holds a run; use --resume {folder.path} or another --name")
        folder.path.mkdir(parents=True, exist_ok=True)
        folder.write_config(cfg)
    return folder, 0, None


def _init_weights(model: nn.Module, spec: str, start: tuple[dict[str, torch.Tensor], dict[str, Any]],
                  normalization: tuple[float, float], split_noise: float = 0.0, seed: int = 0) -> None:
    """Load ``start`` (the weights and metadata read from ``spec``: a checkpoint path, a shipped
    ``model.tag`` or a URL, its SHA-256 checked where known) into ``model`` before the first epoch:
    fine-tuning. The optimiser and schedule start fresh.
    Weights of a narrower model whose shapes ``model``'s tile (``sgem_unet_t`` → ``sgem_unet``) are
    widened to the same function (:mod:`irstd.models.widen`, copies split by ``split_noise``).
    A threshold folded into the weights (``irstd operating-point``) is taken out again first."""
    weights, meta = start
    try:
        own = model.state_dict()
        if is_tiling(weights, own) and any(weights[k].shape != v.shape for k, v in own.items()):
            narrow = create_model(meta["model_name"], **(meta.get("model_kwargs") or {}))
            narrow.load_state_dict(weights)
            widen_into(narrow, model, split_noise=split_noise, seed=seed)
            log.info("init_weights %s: %s widened to this %s (same logits; split noise %g)",
                     spec, meta["model_name"], type(model).__name__, split_noise)
        else:
            model.load_state_dict(weights)  # copies (and casts fp16 files) into the model's fp32 parameters
    except (RuntimeError, WidenError) as exc:
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
    """Continue from the state saved after the last finished epoch (:mod:`.resume`)."""
    run.history, run.best = restore_state(run.parts, state, run.folder, run.cfg.model)
    before = run.history[-1].get("global_batch") if run.history else None
    if before is not None and before != global_batch(run.cfg):
        log.warning("resuming %s with a global batch of %d images instead of %d: the run will not continue "
                    "exactly as it would have", run.folder.path, global_batch(run.cfg), before)
    negatives = run.data.negatives
    # a run that stopped at its last epoch skipped that epoch's mining, which the same weights redo now
    if negatives is not None and _mining_due(run.cfg, run.start_epoch) and negatives.mined_at != run.start_epoch:
        log.info("mining the negative frames after epoch %d (not done before the run stopped)", run.start_epoch)
        _mine(run, run.start_epoch)
    log.info("resumed %s at epoch %d", run.folder.path, run.start_epoch)


def _run_epoch(run: _Run, epoch: int) -> dict[str, Any]:
    """Train one epoch (then validate when due); returns the epoch's log row."""
    cfg = run.cfg
    seed_everything(epoch_seed(cfg.seed, epoch))  # exact resume: each epoch's randomness depends on (seed, epoch) only
    row: dict[str, Any] = {"epoch": epoch + 1, "lr": run.parts.optimizer.param_groups[0]["lr"]}
    stats = train_one_epoch(
        run.net or run.model, run.data.train_loader(epoch), run.parts.optimizer, run.loss_fn, run.device,
        amp_dtype=run.amp_dtype, scaler=run.parts.scaler, grad_clip=cfg.grad_clip, channels_last=cfg.channels_last,
        progress=cfg.progress and is_main_process(), desc=f"epoch {epoch + 1}/{cfg.epochs}",
        accumulation=cfg.grad_accum, ema=run.parts.ema,
    )
    run.parts.scheduler.step()
    row.update(_merge_epoch_stats(stats))
    row.update({"global_batch": global_batch(cfg), "world_size": world_size()})
    broadcast_buffers(run.model)  # one set of BatchNorm statistics (rank 0's) to validate and save
    if len(run.data.val) and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs):
        row.update({f"val_{k}": v for k, v in _validate(run).as_dict().items()})
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
    model = run.selected
    if model is not run.model:
        broadcast_buffers(model)  # each rank averaged its own BatchNorm statistics: validate rank 0's
    if len(shard):  # type: ignore[arg-type]
        run_evaluation(model, run.data.val_loader(shard), run.device, amp_dtype=run.amp_dtype,
                       channels_last=run.cfg.channels_last, metrics=metrics)
    return gather_merged(metrics).compute()


def _save_epoch(run: _Run, epoch: int, row: dict[str, Any]) -> None:
    """Write last (and best, when validation improved), ema, the resume state and the logs as one set.

    A failed write raises :class:`CheckpointError` naming the file and saying what to do; the previous
    epoch's files are intact.
    """
    try:
        _write_epoch(run, epoch, row)
    except OSError as exc:
        where = exc.filename or run.folder.path
        raise CheckpointError(
            f"could not write {where} after epoch {epoch + 1} ({exc.strerror or exc}); the files of the last "
            f"saved epoch are intact: {_write_hint(exc, run.folder.path)} and continue with "
            f"--resume {run.folder.path}") from None


def _write_hint(exc: OSError, folder: Path) -> str:
    """What to do about a failed write: free space only where space ran out."""
    code = exc.errno
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"make {folder} writable (it is read-only or not yours)"
    if code is None:  # torch and safetensors report a full disk without an errno: look at the disk
        try:
            code = errno.ENOSPC if shutil.disk_usage(folder).free < (1 << 20) else None
        except OSError:
            code = None
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "free the space"
    return "fix the cause"


def _write_epoch(run: _Run, epoch: int, row: dict[str, Any]) -> None:
    cfg, norm, rng = run.cfg.to_dict(), run.data.normalization, run.data.input_range
    meta_metrics = {k: v for k, v in row.items() if k.startswith("val_")}
    on_ema = run.selected is not run.model  # the validation scores belong to the moving average
    files = run.folder.epoch_files(epoch + 1)
    try:
        _checkpoint(files, run.folder.last, run.model, normalization=norm, config=cfg,
                    metrics={} if on_ema else meta_metrics, epoch=epoch + 1, input_range=rng)
        val_iou = row.get("val_iou", float("nan"))
        best = run.best
        if not len(run.data.val) or improves(row, run.best, run.cfg.select_metric):
            best = {"val_iou": val_iou if val_iou == val_iou else -1.0, "epoch": epoch + 1, **meta_metrics}
            _checkpoint(files, run.folder.best, run.selected, normalization=norm, config=cfg, metrics=best,
                        epoch=epoch + 1, input_range=rng)
        elif run.start_model is not None and best.get("epoch") == 0:
            _checkpoint(files, run.folder.best, run.start_model, normalization=norm, config=cfg, metrics=best,
                        epoch=0, input_range=rng)
        if run.parts.ema is not None:
            ema_metrics = {"ema_decay": run.cfg.ema_decay, **(meta_metrics if on_ema else {})}
            _checkpoint(files, run.folder.ema, run.parts.ema.module, normalization=norm, config=cfg,
                        epoch=epoch + 1, metrics=ema_metrics, input_range=rng)
        stage_state(files, run.folder, state_of(run.parts, epoch + 1, run.history, best))
        run.folder.stage_logs(files, run.history)
        files.commit()
    except BaseException:
        files.discard()  # nothing renamed yet: the previous epoch's set stands
        raise
    run.best = best  # only once written: a failed write leaves the record matching the files
    run.start_model = None  # best.safetensors exists now (the start's or a better epoch's)


def _checkpoint(files: FileSet, path: Path, model: nn.Module, **kwargs: Any) -> None:
    """Stage :func:`save_checkpoint` of ``path`` into ``files``, with the file named in a failure."""
    write = checkpoint_writer(model, **kwargs)
    files.stage(path, lambda tmp: _write_checkpoint(write, tmp, path))


def _write_checkpoint(write: Callable[[str], None], tmp: str, path: Path) -> None:
    try:
        write(tmp)
    except OSError as exc:
        exc.filename = str(path) if exc.filename in (None, tmp) else exc.filename
        raise
    except SafetensorError as exc:  # safetensors reports I/O failures (ENOSPC…) as its own error
        raise OSError(None, str(exc), str(path)) from exc


def _format_row(row: dict[str, Any]) -> str:
    parts = [f"epoch {row['epoch']}", f"loss {row['loss']:.4f}", f"lr {row['lr']:.2e}", f"{row['images_per_s']:.1f} img/s"]
    if "val_iou" in row:
        parts.append("val " + " ".join(METRIC_COLUMNS[k].short(row[f"val_{k}"]) for k in ("iou", "niou", "pd", "fa")))
    return ", ".join(parts)
