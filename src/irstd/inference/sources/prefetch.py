"""Decoding ahead: a source's frames read in a background thread, a bounded number ahead of the consumer.

Decoding a frame (PNG inflate, video decode, the cast to float32) runs mostly in C with the GIL released,
so a reader thread can decode frame t + 1 while the loop runs the detector and the tracker on frame t,
where a core is free for it (off by default: :data:`PREFETCH`).
:class:`PrefetchSource` keeps the source's contract: the same frames, in the same order, error frames
where they were; an exception the source raises is raised to the consumer after the frames before it;
at most ``depth`` decoded frames wait in the queue (memory stays flat); closing the consumer's generator
(a ``break``, Ctrl-C, an error downstream) stops the reader and ends its thread.

One caveat with a reader thread: the image reader routes PIL's warnings to the debug log through
``warnings.catch_warnings``, which changes the process-wide filters, so a warning the main thread raises
while a frame is being opened may be recorded by the reader (and logged at debug level) instead.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Iterator

from .files import FileSource
from .frames import Frame, FrameSource, Want

__all__ = ["PREFETCH", "PrefetchSource", "prefetched"]

log = logging.getLogger(__name__)

#: frames decoded ahead by default by :func:`~irstd.inference.pipeline.detect_frames` and
#: :func:`~irstd.inference.tracking_run.track_frames` (``irstd detect``, ``irstd track``): 0, decoding in the
#: loop. Measured side by side on seq4 (docs/tracking.md, "Speed"), 2 ahead saved the loop its 5 ms decode
#: but cost as much in the loop's other stages on a 2-core machine with no core to spare; set 2 where a
#: measurement on the machine says it pays (``benchmarks/track_profile.py --prefetch 0 2``).
PREFETCH = 0

_POLL = 0.05  # s: how often a reader blocked on a full queue checks that the consumer is still there
_JOIN = 5.0  # s: how long closing waits for the reader to finish the frame it is decoding

_END, _ERROR = object(), object()


class PrefetchSource(FrameSource):
    """The frames of ``inner``, decoded up to ``depth`` ahead in a reader thread (``depth`` 0: in the
    consumer's thread, as ``inner`` itself)."""

    def __init__(self, inner: FrameSource, depth: int = 2) -> None:
        if depth < 0:
            raise ValueError(f"prefetch depth must be >= 0, got {depth}")
        self.inner, self.depth = inner, depth

    def frames(self, want: Want = None) -> Iterator[Frame]:
        if self.depth == 0:
            yield from self.inner.frames(want)
            return
        ready: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()

        def put(item: tuple[object, Any]) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=_POLL)
                    return True
                except queue.Full:
                    continue
            return False

        def read() -> None:
            frames = self.inner.frames(want)
            try:
                for frame in frames:
                    if not put((frame, None)):
                        return
                put((_END, None))
            except BaseException as exc:  # noqa: BLE001 — handed to the consumer, raised there in order
                put((_ERROR, exc))
            finally:
                frames.close()  # a generator is closed in the thread that runs it

        reader = threading.Thread(target=read, name="irstd-frame-reader", daemon=True)
        reader.start()
        try:
            while True:
                item, exc = ready.get()
                if item is _END:
                    return
                if item is _ERROR:
                    raise exc
                yield item
        finally:
            stop.set()
            while True:  # free the queue's frames (and a reader blocked on it) at once
                try:
                    ready.get_nowait()
                except queue.Empty:
                    break
            reader.join(_JOIN)
            if reader.is_alive():  # a source blocked in its own read (a caller's stalled iterator)
                log.debug("frame reader still busy after %.0f s; left to end on its own (daemon thread)", _JOIN)


def prefetched(source: FrameSource, depth: int = 2) -> FrameSource:
    """``source`` decoded ``depth`` frames ahead where that pays: files (images, stacks, videos) are; a
    caller's iterable of arrays (:class:`~irstd.inference.sources.ArraySource`: nothing to decode, and
    its camera loop is pulled only as the loop asks) and a source already prefetched are returned as is."""
    if depth <= 0 or not isinstance(source, FileSource):
        return source
    return PrefetchSource(source, depth)
