"""Process-group helpers that read the same with or without ``torch.distributed``.

A single process (no process group) is rank 0 of a world of 1, so code written with these helpers
runs unchanged alone and under ``torchrun``. :func:`process_group` joins the group that ``torchrun``
describes in the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``):
NCCL for CUDA devices, gloo for the CPU, with a timeout so that a rank that failed or hung ends the
job with :class:`~irstd.core.errors.DistributedError` instead of a silent wait.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import os
from typing import Any, Callable, Iterator, TypeVar

import torch
import torch.distributed as dist

from .device import resolve_device
from .errors import ConfigError, DistributedError, first_line

__all__ = [
    "BACKENDS", "DEFAULT_TIMEOUT_S", "is_distributed", "rank", "world_size", "local_rank", "is_main_process",
    "main_process_only", "barrier", "all_gather_object", "launched_by_torchrun", "process_group",
    "choose_backend", "rank_device", "shard_range", "broadcast_buffers", "collective", "broadcast_object",
]

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

#: values of the ``dist_backend`` option
BACKENDS = ("auto", "nccl", "gloo")
#: seconds a collective waits for the other ranks before the job fails (torch's own default, 30 min)
DEFAULT_TIMEOUT_S = 1800.0


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of processes in the group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def local_rank() -> int:
    """This process's rank on its machine (``LOCAL_RANK`` from torchrun; 0 alone): its GPU index."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """True on rank 0: the process that writes files and logs results."""
    return rank() == 0


def main_process_only(fn: F) -> F:
    """Run ``fn`` on rank 0 only; other ranks get None."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs) if is_main_process() else None

    return wrapper  # type: ignore[return-value]


def _is_group_failure(exc: BaseException) -> bool:
    """True for errors of the process group itself (peer gone, timeout), not of the caller's code."""
    if isinstance(exc, dist.DistError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        key in text for key in ("gloo", "nccl", "connection closed", "connection reset", "timed out", "timeout")
    )


@contextlib.contextmanager
def collective(what: str) -> Iterator[None]:
    """Turn a failure of the process group during ``what`` into one clear :class:`DistributedError`."""
    try:
        yield
    except Exception as exc:
        if not (is_distributed() and _is_group_failure(exc)):
            raise
        raise DistributedError(
            f"rank {rank()} of {world_size()}: the other ranks stopped answering during {what} "
            f"(one failed, see its error, or hung past the process-group timeout): {first_line(exc, 300)}"
        ) from exc


def barrier() -> None:
    """Wait for every rank (no-op alone)."""
    if is_distributed():
        with collective("a barrier"):
            dist.barrier()


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` alone). Objects must be picklable."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    with collective("a gather of results"):
        dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (``obj`` itself alone); picklable. E.g. rank 0's failure to
    write a checkpoint, so that every rank ends with the same error instead of waiting for it."""
    if not is_distributed():
        return obj
    box = [obj]
    with collective("a broadcast of rank 0's outcome"):
        dist.broadcast_object_list(box, src=src)
    return box[0]


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank (no-op alone).

    Each rank's last training forward updates its own running statistics; validation and the saved
    checkpoint must use one set, rank 0's.
    """
    if not is_distributed():
        return
    with collective("a broadcast of buffers"):
        for buf in module.buffers():
            dist.broadcast(buf, src=0)


def shard_range(n: int, rank_: int | None = None, world: int | None = None) -> range:
    """The contiguous block of ``range(n)`` that ``rank_`` processes: concatenated in rank order, the
    blocks are ``range(n)`` in order, so results gathered in rank order come back in input order."""
    r = rank() if rank_ is None else rank_
    w = world_size() if world is None else world
    return range(r * n // w, (r + 1) * n // w)


def launched_by_torchrun() -> bool:
    """True when the environment describes a group of more than one process (torchrun's variables)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def choose_backend(backend: str, device: torch.device | str | None) -> str:
    """``auto`` → NCCL for a CUDA device, gloo for the CPU; an explicit choice is checked."""
    if backend not in BACKENDS:
        raise ConfigError(f"dist_backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    cuda = resolve_device(device).type == "cuda" if device is not None else torch.cuda.is_available()
    if backend == "auto":
        return "nccl" if cuda and dist.is_nccl_available() else "gloo"
    if backend == "nccl" and not (torch.cuda.is_available() and dist.is_nccl_available()):
        raise ConfigError("dist_backend=nccl needs CUDA devices and a torch built with NCCL; use gloo")
    return backend


def rank_device(device: torch.device) -> torch.device:
    """Under a process group, a bare ``cuda`` becomes this rank's GPU, ``cuda:LOCAL_RANK``."""
    if device.type == "cuda" and device.index is None and launched_by_torchrun():
        return torch.device("cuda", local_rank())
    return device


@contextlib.contextmanager
def process_group(
    backend: str = "auto", timeout_s: float | None = None, device: torch.device | str | None = None
) -> Iterator[bool]:
    """Join torchrun's process group for the duration of the block; yields whether one is active.

    A no-op alone (no ``WORLD_SIZE`` > 1 in the environment) and inside a group that is already
    initialised (the caller owns that one), so library functions and the CLI can both use it.
    ``timeout_s`` bounds every collective: a rank that failed or hung ends the others with
    :class:`DistributedError` once it has passed.
    """
    if not dist.is_available() or dist.is_initialized() or not launched_by_torchrun():
        yield is_distributed()
        return
    name = choose_backend(backend, device)
    if name == "nccl":
        torch.cuda.set_device(local_rank())  # one GPU per rank: NCCL's collectives run on the current device
    timeout = datetime.timedelta(seconds=float(timeout_s or DEFAULT_TIMEOUT_S))
    try:
        dist.init_process_group(name, timeout=timeout)
    except Exception as exc:  # rendezvous failures: unreachable master, port in use, missing peers
        raise DistributedError(f"cannot join the process group ({name}, rank {os.environ.get('RANK')} of "
                               f"{os.environ.get('WORLD_SIZE')}): {first_line(exc, 300)}") from exc
    log.info("joined the process group: rank %d of %d, backend %s, timeout %.0f s",
             rank(), world_size(), name, timeout.total_seconds())
    try:
        yield True
    finally:
        dist.destroy_process_group()
