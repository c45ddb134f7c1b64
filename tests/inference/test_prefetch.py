"""PrefetchSource: the same frames in the same order, bounded read-ahead, errors raised in order, and a
reader thread that ends when the consumer stops."""

from __future__ import annotations

import threading
import time
from typing import Iterator

import numpy as np
import pytest

from irstd.inference.sources import ArraySource, Frame, FrameSource, PrefetchSource, Want, prefetched


class Counting(FrameSource):
    """``n`` frames; counts the frames pulled; raises ``fail_at`` (an exception) instead of that frame."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at, self.pulled, self.closed = n, fail_at, 0, False

    def frames(self, want: Want = None) -> Iterator[Frame]:
        try:
            for i in range(self.n):
                if want is not None and not want(i):
                    continue
                if i == self.fail_at:
                    raise RuntimeError(f"broken at {i}")
                self.pulled += 1
                yield Frame(i, f"f{i}", np.full((4, 4), i, np.float32), error="bad" if i == 3 else None)
        finally:
            self.closed = True


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "irstd-frame-reader" and t.is_alive()]


def test_same_frames_same_order() -> None:
    for depth in (0, 1, 2, 7):
        got = list(PrefetchSource(Counting(20), depth).frames(lambda i: i % 3 != 1))
        assert [f.index for f in got] == [i for i in range(20) if i % 3 != 1]
        assert [f.error for f in got if f.error] == ["bad"]  # an error frame stays where it was
        assert all(float(f.image[0, 0]) == f.index for f in got)


def test_a_callers_generator_keeps_every_frame_in_order() -> None:
    def camera():
        for i in range(50):
            yield np.full((3, 3), i, np.uint8)

    src = ArraySource(camera())
    assert prefetched(src) is src  # a caller's loop is pulled only as the loop asks
    got = list(PrefetchSource(ArraySource(camera()), 2))
    assert [f.index for f in got] == list(range(50)) and [int(f.image[0, 0]) for f in got] == list(range(50))


def test_read_ahead_is_bounded() -> None:
    inner = Counting(100)
    it = PrefetchSource(inner, 2).frames()
    next(it)
    time.sleep(0.3)
    assert inner.pulled <= 1 + 2 + 1  # the one taken, the queue, the one the reader holds
    it.close()


def test_an_exception_of_the_source_comes_after_the_frames_before_it() -> None:
    got = []
    with pytest.raises(RuntimeError, match="broken at 5"):
        for f in PrefetchSource(Counting(10, fail_at=5), 2):
            got.append(f.index)
    assert got == [0, 1, 2, 3, 4]
    time.sleep(0.1)
    assert not _readers()


def test_closing_the_consumer_ends_the_reader() -> None:
    inner = Counting(10_000)
    it = PrefetchSource(inner, 2).frames()
    assert next(it).index == 0 and _readers()
    it.close()  # a break, Ctrl-C or an error downstream closes the generator
    assert not _readers() and inner.closed
    with pytest.raises(ValueError):
        PrefetchSource(inner, -1)


class Slow(FrameSource):
    """Frames that take ``delay`` seconds each to read."""

    def __init__(self, delay: float, n: int = 1000) -> None:
        self.delay, self.n = delay, n

    def frames(self, want: Want = None) -> Iterator[Frame]:
        for i in range(self.n):
            time.sleep(self.delay)
            yield Frame(i, f"f{i}", np.zeros((2, 2), np.float32))


def test_ctrl_c_while_waiting_for_a_frame_ends_the_reader() -> None:
    import os
    import signal

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    # Python's own handler, also when the suite was started with SIGINT ignored (a shell's `cmd &`)
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    got = []
    t0 = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            timer.start()
            for f in PrefetchSource(Slow(0.2, 25), 2):  # 5 s of frames: a lost interrupt fails, not hangs
                got.append(f.index)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, old)
    assert time.perf_counter() - t0 < 1.0  # interrupted while blocked on the queue, not after the source
    assert got and got == list(range(len(got)))
    assert not _readers()  # the reader ended with the generator (the frame it was reading finished first)
