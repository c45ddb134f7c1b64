"""The resume state of a run folder (``last.state.pt``): what it holds, writing it, reading it back.

It is written with the checkpoints and logs of every epoch, as one set (:meth:`RunFolder.epoch_files`), and holds the weights with the optimiser, the
schedule, the gradient scaler, the moving average, the history, the best record and the mined
negative locations, so that ``--resume`` continues exactly where the run stopped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..core.distributed import is_main_process
from ..core.errors import CheckpointError, ConfigError, first_line
from ..core.files import FileSet
from ..models.checkpoint import read_checkpoint
from .mixed_batches import NegativeCrops
from .run_folder import RunFolder

__all__ = ["TrainingParts", "read_state", "open_for_resume", "stage_state", "restore_state", "state_of"]

log = logging.getLogger(__name__)


@dataclass
class TrainingParts:
    """What the resume state saves and restores (a run's objects, shared, not copied)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler | None = None
    ema: torch.optim.swa_utils.AveragedModel | None = None
    negatives: NegativeCrops | None = None


def read_state(folder: RunFolder) -> dict[str, Any]:
    """The state saved in ``folder``; missing or damaged, a :class:`CheckpointError` naming the file."""
    if not folder.state.is_file():
        raise CheckpointError(f"cannot resume: {folder.state} not found (is {folder.path} a run folder?)")
    try:
        state = torch.load(folder.state, map_location="cpu", weights_only=False)
        int(state["epoch"])
    except Exception as exc:  # noqa: BLE001 — a damaged state file must not end in a traceback
        raise CheckpointError(f"cannot resume: {folder.state} is damaged ({type(exc).__name__}: {exc})") from None
    return state


def open_for_resume(resume: str | Path, epochs: int) -> tuple[RunFolder, int, dict[str, Any]]:
    """(folder, first epoch to train, saved state) of the run folder (or its file) ``resume``."""
    folder = RunFolder.of(resume)
    if is_main_process():  # the one writer finishes an interrupted save before anything is read
        folder.recover()
    state = read_state(folder)
    if state["epoch"] >= epochs:
        raise ConfigError(f"{folder.path} already finished {state['epoch']} of {epochs} epochs; raise epochs to continue")
    return folder, int(state["epoch"]), state


def state_of(parts: TrainingParts, epoch: int, history: list[dict[str, Any]], best: dict[str, Any]) -> dict[str, Any]:
    """The resume state after ``epoch`` finished epochs (weights copied to the CPU)."""
    neg = parts.negatives
    return {
        "epoch": epoch,
        "model": {k: v.detach().to("cpu").clone() for k, v in parts.model.state_dict().items()},
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "scaler": parts.scaler.state_dict() if parts.scaler is not None else None,
        "history": history,
        "best": best,
        "ema": parts.ema.state_dict() if parts.ema is not None else None,
        "negative_pool": list(neg.pool) if neg is not None else None,
        "negative_pool_epoch": neg.mined_at if neg is not None else None,
    }


def stage_state(files: FileSet, folder: RunFolder, state: dict[str, Any]) -> None:
    """Stage the folder's state file into ``files`` (written when it commits); a failure is an ``OSError``."""
    files.stage(folder.state, lambda tmp: _write_state(tmp, state, folder.state))


def _write_state(tmp: str, state: dict[str, Any], target: Path) -> None:
    """``torch.save`` to ``tmp``; its failures (a full disk is a ``RuntimeError`` from its zip writer) as
    an ``OSError`` naming ``target``."""
    try:
        torch.save(state, tmp)
    except OSError as exc:
        exc.filename = exc.filename or str(target)
        raise
    except RuntimeError as exc:
        raise OSError(None, first_line(exc), str(target)) from exc


def restore_state(parts: TrainingParts, state: dict[str, Any], folder: RunFolder,
                  model_name: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Load the weights, optimiser, schedule, scaler, moving average and mined pool; returns (history, best)."""
    # the state's own weights match its optimiser even when a kill landed between the two writes;
    # older run folders have none and use last.safetensors
    weights = state["model"] if "model" in state else read_checkpoint(folder.last)[0]
    try:
        parts.model.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(f"cannot resume {folder.path}: its weights do not fit model {model_name!r} "
                              f"({first_line(exc)})") from None
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.scheduler.load_state_dict(state["scheduler"])
    if parts.scaler is not None and state.get("scaler"):
        parts.scaler.load_state_dict(state["scaler"])
    if parts.ema is not None and state.get("ema"):
        parts.ema.load_state_dict(state["ema"])
    if parts.negatives is not None:
        # the mined locations are state: the next epochs draw from them exactly as the straight run does
        parts.negatives.set_pool(state.get("negative_pool") or [], state.get("negative_pool_epoch"))
    return state["history"], state["best"]
