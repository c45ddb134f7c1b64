"""A Ctrl-C that Python would swallow in a callback (printed as "Exception ignored") is raised again."""

from __future__ import annotations

import signal
import sys
import time
import weakref

import pytest

from irstd.__main__ import interrupt_again


class _Thing:
    pass


def _raise_interrupt(_ref: object) -> None:
    raise KeyboardInterrupt


def _spin() -> None:
    for _ in range(2000):  # the re-delivered interrupt comes at the main thread's next instruction
        time.sleep(0.0005)


@pytest.fixture(autouse=True)
def _python_sigint_handler():
    """Python's own SIGINT handler, also when the suite was started with SIGINT ignored (a shell's
    `cmd &`): interrupt_main then does nothing, and these tests would say nothing about the hook."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def test_an_interrupt_lost_in_a_weakref_callback_is_raised_again(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "unraisablehook", interrupt_again)
    thing = _Thing()
    ref = weakref.ref(thing, _raise_interrupt)
    with pytest.raises(KeyboardInterrupt):
        del thing  # the callback raises where Python cannot propagate it
        _spin()
    assert ref() is None and "Exception ignored" not in capsys.readouterr().err


def test_without_the_hook_python_swallows_it(monkeypatch, capsys) -> None:
    """What the hook is for: Python's own hook prints the interrupt and the program goes on."""
    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)
    thing = _Thing()
    ref = weakref.ref(thing, _raise_interrupt)
    del thing
    _spin()
    assert ref() is None and "KeyboardInterrupt" in capsys.readouterr().err


def test_other_unraisable_errors_still_reach_pythons_hook(monkeypatch) -> None:
    seen: list[object] = []
    monkeypatch.setattr(sys, "__unraisablehook__", seen.append)
    monkeypatch.setattr(sys, "unraisablehook", interrupt_again)
    thing = _Thing()

    def fail(_ref: object) -> None:
        raise ValueError("boom")

    ref = weakref.ref(thing, fail)
    del thing
    assert ref() is None and len(seen) == 1 and isinstance(seen[0].exc_value, ValueError)
