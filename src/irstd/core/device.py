"""Devices and precision: which device, which autocast dtype, and the switches that go with them."""

from __future__ import annotations

import contextlib
import functools
from typing import ContextManager, Iterator

import torch

from .amp import AMP_CHOICES
from .errors import ConfigError

__all__ = ["AMP_CHOICES", "resolve_device", "resolve_amp", "autocast", "cpu_supports_bf16", "cudnn_benchmark"]


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


@functools.lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (AVX-512 BF16 / AMX); elsewhere bf16 is emulated and slow."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # build without oneDNN
        return False


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` (one of :data:`AMP_CHOICES`) on ``device`` (None: full fp32).

    ``auto`` picks bf16 on CUDA devices that support it, else fp16 on CUDA, and fp32 on the CPU (CPU
    bf16 is opt-in: it is fast only on CPUs with bf16 instructions, see :func:`cpu_supports_bf16`).
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
    raise ConfigError(f"amp must be one of {', '.join(AMP_CHOICES)}, got {amp!r}")


def autocast(device: torch.device, dtype: torch.dtype | None, cache: bool = True) -> ContextManager:
    """``torch.autocast`` for ``dtype``, or a no-op when ``dtype`` is None.

    ``cache=False`` for code captured into a CUDA graph: the graph must not record autocast's weight
    cache, which is freed when the context exits.
    """
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype, cache_enabled=cache)


@contextlib.contextmanager
def cudnn_benchmark(device: torch.device, on: bool) -> Iterator[None]:
    """``torch.backends.cudnn.benchmark = on`` for the duration of one call on CUDA (restored after),
    so that a fast runner does not change the fp32 reference's cuDNN settings. No-op elsewhere."""
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on  # cuDNN times its algorithms once per input shape, then reuses the best
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before
