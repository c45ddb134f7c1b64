"""Device, precision and seeding helpers shared by training, evaluation and inference."""

from __future__ import annotations

import contextlib
import random
from typing import ContextManager

import numpy as np
import torch

from ..errors import ConfigError

__all__ = ["resolve_device", "resolve_amp", "autocast", "seed_everything"]


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """``auto`` → the first CUDA device if present, else the CPU; unknown or absent devices are errors."""
    if isinstance(spec, torch.device):
        return spec
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"unknown device {spec!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {spec!r} requested but CUDA is not available on this machine")
    return device


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device`` (None: full fp32).

    ``auto`` picks bf16 on CUDA devices that support it, else fp16 on CUDA, and fp32 on the CPU (CPU
    bf16 is opt-in: it is fast only on CPUs with bf16 instructions).
    """
    if amp == "none":
        return None
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        if device.type != "cuda":
            raise ConfigError("amp=fp16 needs a CUDA device; use bf16 on the CPU")
        return torch.float16
    raise ConfigError(f"amp must be auto, bf16, fp16 or none, got {amp!r}")


def autocast(device: torch.device, dtype: torch.dtype | None) -> ContextManager:
    """``torch.autocast`` for ``dtype``, or a no-op when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
