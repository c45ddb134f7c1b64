"""Frame sources: where frames come from, one at a time, in source order.

:func:`open_source` turns what a user names (image files, folders and globs in natural order,
multi-page TIFF stacks, video files through PyAV) or any iterable of arrays (a caller's camera loop)
into a :class:`FrameSource` that yields :class:`Frame` items. Frames stream: a source holds the current
frame only, so memory stays flat however long the input. A frame that cannot be read is yielded with its
``error`` (one line naming the file); the source goes on. :func:`prefetched` decodes a file source's frames
a bounded number ahead in a reader thread (:mod:`.prefetch`), in the same order.
"""

from __future__ import annotations

import os
from typing import Iterable

import numpy as np

from ...data.io import Admit

from .files import FileSource, expand_inputs, is_image_file, natural_sorted
from .frames import ArraySource, Frame, FrameSource, Want
from .prefetch import PREFETCH, PrefetchSource, prefetched
from .video import VIDEO_EXTENSIONS, is_video_file, read_video, video_rate

__all__ = ["ArraySource", "FileSource", "Frame", "FrameSource", "PREFETCH", "PrefetchSource", "VIDEO_EXTENSIONS", "Want",
           "expand_inputs", "is_image_file", "is_video_file", "natural_sorted", "open_source", "prefetched", "read_video",
           "video_rate"]


def open_source(inputs: FrameSource | str | os.PathLike | Iterable, *, max_pixels: int | None = None,
                admit: Admit | None = None) -> FrameSource:
    """A :class:`FrameSource` for ``inputs``: a source as is; a name, or a list or tuple of names (files,
    folders, glob patterns; see :func:`expand_inputs`) as a :class:`FileSource`; any other iterable (of
    arrays or :class:`Frame` items) as an :class:`ArraySource`. Names are checked here: one that does
    not exist raises :class:`~irstd.core.errors.DataError`. ``max_pixels`` and ``admit`` (a header check before
    decoding, e.g. :meth:`~irstd.inference.Predictor.admit`) apply to image files."""
    if isinstance(inputs, FrameSource):
        return inputs
    if isinstance(inputs, (str, bytes, os.PathLike)):
        inputs = [inputs]
    if isinstance(inputs, (list, tuple)) and inputs and all(isinstance(i, (str, bytes, os.PathLike)) for i in inputs):
        return FileSource(expand_inputs(inputs), max_pixels=max_pixels, admit=admit)
    if isinstance(inputs, np.ndarray) and inputs.ndim == 2:
        inputs = [inputs]
    return ArraySource(inputs)
