"""Process-group helpers that read the same with or without ``torch.distributed``.

A single process (no process group) is rank 0 of a world of 1, so code written with these helpers
runs unchanged alone and under ``torchrun``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import torch.distributed as dist

__all__ = ["is_distributed", "rank", "world_size", "is_main_process", "main_process_only", "barrier", "all_gather_object"]

F = TypeVar("F", bound=Callable[..., Any])


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of processes in the group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0: the process that writes files and logs results."""
    return rank() == 0


def main_process_only(fn: F) -> F:
    """Run ``fn`` on rank 0 only; other ranks get None."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs) if is_main_process() else None

    return wrapper  # type: ignore[return-value]


def barrier() -> None:
    """Wait for every rank (no-op alone)."""
    if is_distributed():
        dist.barrier()


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` alone). Objects must be picklable."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
