"""What a frame source yields: :class:`Frame`, the :class:`FrameSource` interface and the source of a
caller's own arrays (:class:`ArraySource`, e.g. a camera loop)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

__all__ = ["Frame", "FrameSource", "ArraySource", "Want"]

#: which frame indices a reader should decode (None: all); the others are skipped as cheaply as the format allows
Want = Callable[[int], bool] | None


@dataclass
class Frame:
    """One frame of a source.

    ``index`` counts frames in source order from 0 over all inputs; ``name`` is what records call the
    frame (the file, or ``file#N`` for frame N of a video or page N of a stack); ``time`` is the
    presentation time in seconds when the source knows it (videos), else None. ``image`` is (H, W) in the
    frame's native range as :func:`irstd.data.io.load_image` gives it (float32; 0..255 for 8-bit, 0..65535
    for 16-bit; a caller's arrays as given), or None for a frame that could not be read, whose ``error``
    then says why in one line naming the file.
    """

    index: int
    name: str
    image: np.ndarray | None
    time: float | None = None
    path: Path | None = None
    stem: str = ""  #: a file-name stem for what is written per frame (overlays)
    error: str | None = None

    def __post_init__(self) -> None:
        if not self.stem:
            self.stem = self.path.stem if self.path is not None else f"frame_{self.index:06d}"


class FrameSource(ABC):
    """Frames one at a time in source order; nothing holds more than the current frame (a
    :class:`~irstd.inference.sources.PrefetchSource` holds its few frames decoded ahead)."""

    @abstractmethod
    def frames(self, want: Want = None) -> Iterator[Frame]:
        """The frames whose index ``want`` accepts (all by default), in order; a frame that cannot be
        read is yielded with ``error`` set and the source goes on with the next one."""

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()


class ArraySource(FrameSource):
    """Frames from any iterable of (H, W) arrays or :class:`Frame` items: a caller's camera loop.

    Items are consumed lazily, once; a :class:`Frame` keeps its name, time and stem but is renumbered in
    source order. Arrays are passed on as given (the predictor accepts any numeric dtype).
    """

    def __init__(self, items: Iterable[np.ndarray | Frame], name: str = "stream") -> None:
        self.items = items
        self.name = name

    def frames(self, want: Want = None) -> Iterator[Frame]:
        for i, item in enumerate(self.items):
            if want is not None and not want(i):
                continue
            if isinstance(item, Frame):
                yield Frame(i, item.name, item.image, item.time, item.path, item.stem or "", item.error)
            else:
                yield Frame(i, f"{self.name}#{i}", item, stem=f"{self.name}_{i:06d}")
