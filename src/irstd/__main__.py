"""``python -m irstd`` (and ``torchrun ... -m irstd``) and the ``irstd`` console script: the ``irstd`` command.

The console script (``[project.scripts]`` in pyproject.toml) names :func:`entry`, not
``irstd.cli.main:main``: a generated script imports its target module before calling anything, so a
Ctrl-C while ``irstd.cli.main`` and its imports load would end in a ``KeyboardInterrupt`` traceback.
Here the import happens inside the handler; what is left outside it is the interpreter's start-up and
``import irstd`` (the package's ``__init__``: no torch, a few standard modules).

A Ctrl-C can also land in code Python cannot raise from (an import lock's weakref callback, a
``__del__``): Python prints it as "Exception ignored" with a traceback and goes on as if no key was
pressed. :func:`entry` installs :func:`interrupt_again`, which delivers such an interrupt once more.
And a library's import may turn the interrupt into an error of its own (numpy's C import: an
``ImportError``) or swallow it (a bare ``except``): :func:`entry` counts every Ctrl-C, so either still
ends with the one line and status 130.
"""

import _thread
import signal
import sys
from typing import Any

_seen: list[int] = []  #: Ctrl-C signals this process received (entry's handler appends)


def _on_interrupt(signum: int, frame: Any) -> None:
    """SIGINT: count it, then what Python's own handler does."""
    _seen.append(signum)
    raise KeyboardInterrupt


def interrupt_again(unraisable: Any) -> None:
    """``sys.unraisablehook``: a ``KeyboardInterrupt`` swallowed in a callback is raised again in the main
    thread (within a few ms, where that thread is then) instead of printed and lost; anything else goes to
    Python's hook."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        # from another thread: in the main thread, interrupt_main (like any Python code run here) would
        # raise at once, inside this hook, where it is lost again; a bare thread does not wait to start
        _thread.start_new_thread(_thread.interrupt_main, ())
        return
    sys.__unraisablehook__(unraisable)


def entry() -> int:
    """The ``irstd`` command: Ctrl-C at any moment of its start ends with one line and status 130."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when started with SIGINT ignored
        signal.signal(signal.SIGINT, _on_interrupt)
    sys.unraisablehook = interrupt_again
    try:
        from irstd.cli.main import main
    except BaseException as exc:  # Ctrl-C while the command's first modules load: one line, no traceback
        if isinstance(exc, KeyboardInterrupt) or _seen:
            return _interrupted()
        raise
    if _seen:  # pressed during the imports and swallowed there: stop before the command starts
        return _interrupted()
    try:
        code = main()
    except BaseException:  # main answers a KeyboardInterrupt itself; this is one a library turned into an error
        if _seen:
            return _interrupted()
        raise
    from irstd.core.process_exit import exit_if_gloo_left

    exit_if_gloo_left(code)  # under torchrun after DDP: finalizing could abort the rank (docs/distributed.md)
    return code


def _interrupted() -> int:
    print("irstd: interrupted", file=sys.stderr)
    return 130


if __name__ == "__main__":
    sys.exit(entry())
