"""Device, precision and seeding helpers shared by training, evaluation and inference."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import logging
import os
import random
from typing import ContextManager

import numpy as np
import torch

from ..errors import ConfigError

__all__ = ["resolve_device", "resolve_amp", "autocast", "seed_everything", "retain_freed_memory", "memory_retained", "libc_malloc"]

log = logging.getLogger(__name__)

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_retained = False


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


@functools.lru_cache(maxsize=1)
def libc_malloc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has ``mallopt`` and ``malloc_trim``), else None."""
    path = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(path) if path else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def retain_freed_memory() -> bool:
    """Let the process keep and reuse freed memory for large tensors (glibc only; returns whether set).

    glibc serves blocks above its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and returns
    them on ``free``, so every large activation (a 32-channel bf16 map of a 1280×1024 frame is 84 MB)
    is page-faulted and zeroed again on every call: at that size CPU inference cost 9 % more per
    pixel than at 256×256 (``docs/speed.md``). This asks malloc to serve such blocks from its heap and
    not to trim freed memory back to the system, so the second frame reuses the first one's memory,
    as a caching allocator would. The process's memory then stays at its peak until it exits, which
    suits an inference or benchmark process; the ``irstd`` command does it at start-up (set
    ``IRSTD_RETAIN_MEMORY=0`` to keep malloc's defaults). Process-wide: libraries do not call it on
    their own, applications opt in. Same effect from outside: ``MALLOC_MMAP_MAX_=0
    MALLOC_TRIM_THRESHOLD_=2147483647``.
    """
    global _retained
    if _retained:
        return True
    libc = libc_malloc()
    if libc is None:  # not glibc (musl, macOS, Windows)
        log.debug("mallopt not available: freed memory is managed by the system allocator")
        return False
    # no mmap for large blocks (glibc still falls back to mmap when the heap cannot grow), no trimming
    ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    _retained = ok
    log.debug("malloc keeps freed memory: %s", ok)
    return ok


def memory_retained() -> bool:
    """True once :func:`retain_freed_memory` has applied its setting in this process, or when the
    environment sets the same glibc options."""
    return _retained or os.environ.get("MALLOC_MMAP_MAX_") == "0"
