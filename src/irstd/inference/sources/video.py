"""Video files through PyAV, decoded to grey.

PyAV is chosen because it is the maintained binding of FFmpeg (every container and codec FFmpeg reads),
its wheels ship FFmpeg itself (nothing to install beside ``pip install sgem-irstd[video]``), and it gives
each frame's presentation time stamp, so times are exact rather than counted from a nominal rate.
Frames are converted to FFmpeg's grey formats (``gray``, or ``gray16le`` for deeper sources): the luma
plane in full range, so a grey infrared video written from frames reads back as those frames.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Generator

import numpy as np

from ...core.errors import ConfigError
from .frames import Frame, Want

__all__ = ["VIDEO_EXTENSIONS", "is_video_file", "require_av", "read_video", "video_rate"]

log = logging.getLogger(__name__)

#: file name endings read as videos (lower case)
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mkv", ".avi", ".mov", ".webm", ".mpg", ".mpeg", ".ts", ".wmv", ".flv",
                    ".y4m", ".nut")


def is_video_file(path: Path) -> bool:
    """True for a file whose extension is a video container's."""
    return path.name.lower().endswith(VIDEO_EXTENSIONS)


def require_av():
    """The ``av`` module, or :class:`ConfigError` saying how to install it."""
    try:
        import av
    except ImportError:
        raise ConfigError("reading videos needs PyAV: pip install 'sgem-irstd[video]' (or pip install av)") from None
    return av


def _grey(frame) -> np.ndarray:
    """One decoded frame as float32 (H, W) in its native range (8-bit 0..255, deeper 0..65535)."""
    bits = max((c.bits for c in frame.format.components), default=8)
    arr = frame.to_ndarray(format="gray16le" if bits > 8 else "gray")
    return np.ascontiguousarray(arr, dtype=np.float32)


def video_rate(path: Path) -> Fraction | None:
    """The frame rate video ``path`` states (its stream's average rate, else FFmpeg's guess from the time
    base), exact (e.g. 30000/1001); None when it states none or cannot be opened."""
    av = require_av()
    try:
        with av.open(os.fsdecode(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
    except Exception:  # noqa: BLE001 — an unreadable file has no rate; reading it says why
        return None
    return Fraction(rate) if rate and rate > 0 else None


def read_video(path: Path, start: int, want: Want = None) -> Generator[Frame, None, int]:
    """Frames of video ``path`` numbered from ``start``; returns the index after the video's last frame.

    A file that cannot be opened, a decoding error, or a stream that ends before its header says it
    should (a truncated file) yields one error frame and ends the file; the frames before it are kept.
    Frames ``want`` refuses are decoded (a video cannot skip them) but not converted.
    """
    av = require_av()
    index, n, last_end = start, 0, None
    try:
        container = av.open(os.fsdecode(path))
    except Exception as exc:  # noqa: BLE001 — any demuxer failure is a bad file, never a crash
        return (yield from _error(path, index, 0, f"cannot open video ({type(exc).__name__}: {exc})", want))
    with container:
        if not container.streams.video:
            return (yield from _error(path, index, 0, "no video stream", want))
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        try:
            for vf in container.decode(stream):
                if want is None or want(index):
                    yield Frame(index, f"{path}#{n}", _grey(vf), vf.time, path, f"{path.stem}_{n:06d}")
                if vf.time is not None:
                    last_end = vf.time + (1.0 / rate if rate else 0.0)
                index, n = index + 1, n + 1
        except Exception as exc:  # noqa: BLE001 — a corrupt or cut packet ends this file only
            why = f"truncated or corrupt after {n} frame(s) ({type(exc).__name__}: {exc})"
            return (yield from _error(path, index, n, why, want))
        short = _shortfall(container, stream, n, last_end, rate)
        if short:
            return (yield from _error(path, index, n, f"truncated: {short}", want))
    return index


def _shortfall(container, stream, n: int, last_end: float | None, rate: float) -> str | None:
    """Why the stream looks cut short (fewer frames, or less time, than its header states), else None."""
    if stream.frames and n < stream.frames:
        return f"{n} of {stream.frames} frames decoded"
    total = None
    if stream.duration and stream.time_base:  # the video stream's own end, in its time base
        total = float(((stream.start_time or 0) + stream.duration) * stream.time_base)
    elif container.duration and len(container.streams) == 1:  # microseconds (AV_TIME_BASE); audio could outlast video
        total = ((container.start_time or 0) + container.duration) / 1_000_000
    if total is not None and last_end is not None:
        slack = 1.5 / rate if rate else 0.1
        if last_end + slack < total:
            return f"{n} frame(s), decoding stopped at {last_end:.2f} s of {total:.2f} s"
    return None


def _error(path: Path, index: int, n: int, why: str, want: Want) -> Generator[Frame, None, int]:
    """Yield the error frame at ``index`` (if wanted); return the index after it."""
    log.debug("%s: %s", path, why)
    if want is None or want(index):
        yield Frame(index, f"{path}#{n}", None, None, path, f"{path.stem}_{n:06d}", f"{path}: {why}")
    return index + 1
