"""Checkpoints that rebuild their model alone.

A checkpoint is a safetensors file: the weights, plus one metadata entry ``irstd`` holding JSON with the
model name and arguments, the input normalisation, the stride, the training config, metrics and library
versions. :func:`load_model` needs nothing else. Training state for ``--resume`` (optimizer, scheduler,
epoch) lives beside it in ``<name>.state.pt``. Every write goes to a temporary file first and is renamed,
so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import __version__
from ..errors import CheckpointError
from ..models import create_model

__all__ = ["save_checkpoint", "read_checkpoint", "load_model", "atomic_write", "FORMAT_VERSION"]

FORMAT_VERSION = 1


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path`` (same folder, so the rename is atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    normalization: tuple[float, float],
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    epoch: int | None = None,
) -> None:
    """Write ``model``'s weights and everything needed to rebuild and use it."""
    meta = {
        "format_version": FORMAT_VERSION,
        "model_name": getattr(model, "model_name", None),
        "model_kwargs": getattr(model, "model_kwargs", {}),
        "normalization": [float(normalization[0]), float(normalization[1])],
        "stride": int(getattr(model, "stride", 1)),
        "in_chans": int(getattr(model, "in_chans", 1)),
        "config": config or {},
        "metrics": metrics or {},
        "epoch": epoch,
        "irstd_version": __version__,
        "torch_version": torch.__version__,
    }
    if meta["model_name"] is None:
        raise CheckpointError("model was not built with irstd.models.create_model (no model_name to record)")
    # safetensors refuses shared storage; contiguous CPU copies are safe to write
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata={"irstd": json.dumps(meta)}))


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state_dict, metadata) of a checkpoint, with a clear error for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("irstd")
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({exc})") from None
    if raw is None:
        raise CheckpointError(f"{path}: safetensors file without irstd metadata (not written by irstd)")
    meta = json.loads(raw)
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format {meta['format_version']} is newer than this irstd ({FORMAT_VERSION})")
    return state, meta


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model stored in ``path`` in eval mode on ``device``.

    The returned module carries ``normalization`` (mean, std) and ``checkpoint_meta`` (the full metadata).
    """
    state, meta = read_checkpoint(path)
    model = create_model(meta["model_name"], **meta.get("model_kwargs", {}))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit model {meta['model_name']!r}: {exc}") from None
    model.normalization = tuple(meta["normalization"])
    model.checkpoint_meta = meta
    return model.to(device).eval()
