"""Checkpoints that rebuild their model alone, and the metadata every saved model carries.

A checkpoint is a safetensors file: the weights, plus one metadata entry ``irstd`` holding JSON with the
model name and arguments, the input normalisation, the stride, the training config, metrics and library
versions. :func:`load_model` needs nothing else. :func:`model_metadata` is the part that describes the
model itself; ONNX files written by :mod:`irstd.export` carry the same dictionary. Every write goes to a
temporary file first and is renamed, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..core.errors import CheckpointError, first_line
from ..core.files import atomic_write
from ..core.version import __version__
from ._registry import build_model
from .pretrained import resolve_weights

__all__ = ["save_checkpoint", "checkpoint_writer", "read_checkpoint", "load_model", "model_metadata", "folded_offset", "FORMAT_VERSION"]

FORMAT_VERSION = 1


def model_metadata(model: nn.Module, normalization: tuple[float, float] | None = None,
                   input_range: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a saved model needs to be rebuilt and used alone: name, arguments, normalisation, stride,
    input channels, training input range, versions. ``normalization`` and ``input_range`` default to
    the model's attributes (None if absent)."""
    norm = normalization if normalization is not None else getattr(model, "normalization", None)
    return {
        "model_name": getattr(model, "model_name", None),
        "model_kwargs": getattr(model, "model_kwargs", {}),
        "normalization": [float(norm[0]), float(norm[1])] if norm is not None else None,
        "stride": int(getattr(model, "stride", 1)),
        "in_chans": int(getattr(model, "in_chans", 1)),
        # value range of the training frames (bit depth, robust low/high): the predictor's --input-range
        "input_range": getattr(model, "input_range", None) if input_range is None else dict(input_range),
        "irstd_version": __version__,
        "torch_version": torch.__version__,
    }


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    normalization: tuple[float, float],
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    epoch: int | None = None,
    input_range: dict[str, Any] | None = None,
    operating_point: dict[str, Any] | None = None,
) -> None:
    """Write ``model``'s weights and everything needed to rebuild and use it.

    ``operating_point``: how a threshold folded into the weights was chosen
    (:func:`irstd.engine.operating_point.fold_operating_point`), recorded as is.

    A failed write (disk full, permissions) raises ``OSError`` and leaves any previous file at ``path`` intact.
    """
    atomic_write(path, checkpoint_writer(model, normalization=normalization, config=config, metrics=metrics,
                                         epoch=epoch, input_range=input_range, operating_point=operating_point))


def checkpoint_writer(
    model: nn.Module,
    *,
    normalization: tuple[float, float],
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    epoch: int | None = None,
    input_range: dict[str, Any] | None = None,
    operating_point: dict[str, Any] | None = None,
) -> Callable[[str], None]:
    """A function writing ``model``'s checkpoint (as :func:`save_checkpoint`) straight to the path it is
    given: for callers that stage files themselves (:class:`irstd.core.files.FileSet`). The weights are
    copied to the CPU now."""
    meta = {
        "format_version": FORMAT_VERSION,
        **model_metadata(model, normalization, input_range),
        "config": config or {},
        "metrics": metrics or {},
        "epoch": epoch,
    }
    if operating_point is not None:
        meta["operating_point"] = operating_point
    if meta["model_name"] is None:
        raise CheckpointError("model was not built with irstd.models.create_model (no model_name to record)")
    # safetensors refuses shared storage; contiguous CPU copies are safe to write
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    return lambda path: save_file(state, path, metadata={"irstd": json.dumps(meta)})


def read_checkpoint(path: str | Path, sha256: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state_dict, metadata) of a checkpoint, with a clear error for a missing or foreign file.

    ``path`` may also be shipped weights by name (``sgem_unet.sirst``) or a URL with its SHA-256
    (:func:`irstd.models.pretrained.resolve_weights`); tensors keep their stored dtype.
    """
    path = resolve_weights(path, sha256)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("irstd")
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({exc})") from None
    if raw is None:
        raise CheckpointError(f"{path}: safetensors file without irstd metadata (not written by irstd)")
    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise CheckpointError(f"{path}: corrupt irstd metadata ({exc})") from None
    version = meta.get("format_version", 0) if isinstance(meta, dict) else None
    if not isinstance(version, int) or not isinstance(meta.get("model_name"), str):
        raise CheckpointError(f"{path}: irstd metadata without a format version and model name")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format {version} is newer than this irstd ({FORMAT_VERSION}); upgrade irstd")
    return state, meta


def load_model(path: str | Path, device: str | torch.device = "cpu", *, sha256: str | None = None,
               **model_kwargs: Any) -> nn.Module:
    """Rebuild the model stored in ``path`` (a file, a shipped ``model.tag`` or a URL) in eval mode on ``device``.

    The returned module carries ``normalization`` (mean, std) and ``checkpoint_meta`` (the full metadata);
    fp16-stored weights are loaded into the model's fp32 parameters. ``model_kwargs`` override the stored
    constructor arguments (e.g. ``drop_path``); the weights must still fit.
    """
    state, meta = read_checkpoint(path, sha256)
    try:
        model = build_model(meta["model_name"], **{**meta.get("model_kwargs", {}), **model_kwargs})
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild {meta['model_name']!r} ({exc})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        # torch lists every key: the first line says what differs
        raise CheckpointError(f"{path}: weights do not fit model {meta['model_name']!r} ({first_line(exc)})") from None
    model.normalization = tuple(meta["normalization"])
    model.input_range = meta.get("input_range")
    model.checkpoint_meta = meta
    return model.to(device).eval()


def folded_offset(meta: dict[str, Any]) -> float:
    """The logit offset folded into a checkpoint's logit bias, from its metadata (0 if none).

    ``irstd operating-point`` subtracts ``operating_point.logit_offset`` from the bias; folding again
    keeps the earlier record under ``previous``, so the total is their sum. Adding it back gives the
    logits the model was trained to produce.
    """
    total, record = 0.0, meta.get("operating_point")
    while record:
        total += float(record["logit_offset"])
        record = record.get("previous")
    return total
