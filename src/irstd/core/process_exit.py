"""Ending a process that used a gloo process group (torch-free: the ``irstd`` command calls it after
its command returned, even when an interrupted import left torch half loaded)."""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["gloo_threads_left", "exit_if_gloo_left"]


def gloo_threads_left() -> int:
    """Threads of gloo process groups running in this process (their names start ``pt_gloo``; Linux
    only, 0 where ``/proc`` is missing)."""
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return 0
    found = 0
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                found += f.read().startswith("pt_gloo")
        except OSError:  # the thread ended meanwhile
            pass
    return found


def exit_if_gloo_left(code: int) -> None:
    """End the process now with ``code``, skipping interpreter finalization, if gloo threads outlived
    their process group; return otherwise.

    PyTorch 2.13 keeps a gloo group's worker threads after ``destroy_process_group`` once a
    DistributedDataParallel was built on it. During finalization such a thread that releases a
    collective's tensors asks for the GIL, and the process aborts ("terminate called without an active
    exception", status -6) after a run that succeeded (docs/distributed.md). Every file of the command is
    closed by now; logging and the standard streams are flushed first.
    """
    if not gloo_threads_left():
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be told through it
            pass
    os._exit(code)
