"""The memory policy of processes that own their memory (inference and benchmark commands, the service):
glibc's malloc settings and the size of torch's per-shape kernel caches on the CPU.

Process-wide, so the library never applies it on its own: the commands that gain from it
(``irstd detect``, ``evaluate``, ``bench``, ``export``; ``irstd serve``) opt in at start-up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os

__all__ = ["retain_freed_memory", "memory_retained", "libc_malloc", "malloc_trim", "single_malloc_arena",
           "bound_shape_caches", "SHAPE_CACHE_ENV", "SERVE_KERNEL_CACHE"]

log = logging.getLogger(__name__)

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_retained = False


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
    suits an inference or benchmark process; the ``irstd`` commands that run networks do it at
    start-up (set ``IRSTD_RETAIN_MEMORY=0`` to keep malloc's defaults). Process-wide: libraries do not call it on
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


def malloc_trim() -> None:
    """glibc's ``malloc_trim(0)`` (hand freed heap memory back to the OS) where available; a no-op elsewhere."""
    libc = libc_malloc()
    if libc is not None:
        libc.malloc_trim(0)


def single_malloc_arena() -> bool:
    """Let every thread allocate from glibc's main arena (glibc only; returns whether set). Call it before
    other threads start.

    By default each thread that allocates while another holds the lock gets its own arena, and
    :func:`malloc_trim` cannot shrink the top of those (only freed chunks inside them): a long-running
    service whose decoding and model threads once held large frames keeps that memory resident. With one
    arena the whole heap can be trimmed. Small allocations go through glibc's per-thread caches without
    the lock, so the cost is contention on large ones only. Process-wide: applications opt in (``irstd
    serve`` does, docs/serve.md). Same effect from outside: ``MALLOC_ARENA_MAX=1``.
    """
    libc = libc_malloc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_ARENA_MAX, 1) == 1
    log.debug("one malloc arena: %s", ok)
    return ok


#: torch's two CPU kernel caches keyed by input shape, as (environment variable, what it counts): oneDNN's
#: primitive cache (compiled kernels) and ideep's cache of oneDNN primitives (torch's mkldnn layer)
SHAPE_CACHE_ENV = {"onednn": "ONEDNN_PRIMITIVE_CACHE_CAPACITY", "ideep": "LRU_CACHE_CAPACITY"}

#: oneDNN's cache entries in ``irstd serve`` unless ``--kernel-cache`` or the environment says otherwise
#: (oneDNN's own default: 1,024). Every shipped model needs 23 (unet: 19) entries for its weights plus 26
#: (19) per frame size and batch size, and serve runs batches as power-of-two chunks (at most 1, 2, 4, 8,
#: 16 frames): one frame size at every batch size is 153 entries, so a steady camera never recompiles,
#: while a flood of many sizes cannot grow the cache past 160 entries (about 9 MB in use against 53 MB
#: at 1,024 after the flood's shapes; benchmarks/results/kernel-counts*.md, kernel-caches-sweep.md and
#: serve-flood-cpu-cap*.md; docs/serve.md, "Memory").
SERVE_KERNEL_CACHE = 160


def bound_shape_caches(ideep: int = 1, onednn: int | None = None,
                       environ: dict[str, str] | None = None) -> dict[str, str]:
    """Bound torch's CPU kernel caches, which keep entries per input shape (batch size included): ideep's
    to ``ideep`` entries (at least 1), oneDNN's to ``onednn`` (None: its default, 1,024); returns the
    settings made. Call it before the first convolution runs: both caches read their capacity once.

    A service meets frames of many sizes and batch sizes; each new one adds a shipped model's kernels
    for it to each cache (counts at :data:`SERVE_KERNEL_CACHE`), and what they hold stays after the
    traffic is gone: after a flood of hostile requests 40-50 MB more was in use on the heap of a 310 MB process (docs/serve.md, "Memory").
    ideep's cache (torch's mkldnn layer) keeps its own references to primitives, also those oneDNN's
    cache has dropped, and a miss there is a look-up in oneDNN's cache: one entry costs no measurable time
    (0 entries crash torch 2.13 on the first convolution, hence at least 1). oneDNN's entries are the
    compiled kernels, dear to rebuild (without them a 256² frame took 53 ms instead of 20-30), so it keeps
    its default unless asked; ``irstd serve`` asks for :data:`SERVE_KERNEL_CACHE`, enough for the kernels
    of one frame size at its batch sizes (``benchmarks/kernel_counts.py``, ``kernel_caches.py``). A
    variable the user set is left alone. Same effect from outside: ``LRU_CACHE_CAPACITY=1``.
    """
    env = os.environ if environ is None else environ
    wanted = [(SHAPE_CACHE_ENV["ideep"], max(1, int(ideep)))]
    if onednn is not None:
        wanted.append((SHAPE_CACHE_ENV["onednn"], max(0, int(onednn))))
    made = {}
    for var, value in wanted:
        if var not in env and not (var.startswith("ONEDNN_") and "DNNL_PRIMITIVE_CACHE_CAPACITY" in env):
            env[var] = made[var] = str(value)
    log.debug("torch's kernel caches bounded: %s", made or "left as the environment sets them")
    return made
