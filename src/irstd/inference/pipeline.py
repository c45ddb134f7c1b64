"""Run a predictor over a frame source and yield detection records: the one loop from frames to
detections, used by ``irstd detect`` and ``irstd track``; the service, which batches frames across
requests, shares its per-frame error policy (:func:`frame_failure`, ``irstd.serve.batcher``).

:func:`detect_frames` reads a :class:`~irstd.inference.sources.FrameSource` one frame at a time, runs the
predictor on it and yields a :class:`Detection` (the record of :mod:`irstd.inference.schema` with
``frame`` and ``time``, and the frame and the prediction for a consumer that needs pixels, e.g. a
tracker or an overlay). The per-frame error policy: a frame that cannot be read, is refused
(:class:`DataError`: also a frame above the predictor's memory budget), or runs out of memory
(``MemoryError``, torch's allocation failures: :data:`OOM_MESSAGES`) becomes that frame's error record; the
run goes on. Under torchrun each rank runs every
``world``-th frame and the records are gathered frame by frame, so every rank yields all records in
source order (pixels only for its own frames).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any, Container, Iterator, Protocol, Sequence

import numpy as np

from ..core.distributed import all_gather_object, rank, world_size
from ..core.errors import DataError, first_line
from .predictor import Prediction
from .schema import error_record, frame_record
from .sources import PREFETCH, Frame, FrameSource, open_source, prefetched

__all__ = ["Detection", "FramePredictor", "OOM_MESSAGES", "detect_frames", "frame_failure"]

log = logging.getLogger(__name__)

#: what torch's allocation failures say, lower case: the CPU allocator ("DefaultCPUAllocator: can't allocate
#: memory"), the CUDA caching allocator and MPS ("… out of memory"), oneDNN when it cannot get the memory for a
#: convolution ("could not create a primitive", seen under a memory cap), Windows ("not enough memory")
OOM_MESSAGES = ("out of memory", "can't allocate memory", "failed to allocate", "not enough memory",
                "could not create a primitive")


class FramePredictor(Protocol):
    """What :func:`detect_frames` needs of a predictor (:class:`~irstd.inference.Predictor` has it)."""

    def predict(self, frames: Sequence[np.ndarray]) -> list[Prediction]: ...


@dataclass
class Detection:
    """One frame's result: ``record`` (the schema's record, with ``frame`` and ``time``), the ``frame``
    itself and its ``prediction`` (None for an error record, and both None for a frame that another
    rank ran)."""

    record: dict[str, Any]
    frame: Frame | None = None
    prediction: Prediction | None = None

    @property
    def ok(self) -> bool:
        return "error" not in self.record


def frame_failure(exc: BaseException, name: str) -> str | None:
    """The error line of a failure that costs one frame only, naming it; None for any other failure."""
    if isinstance(exc, DataError):
        text = str(exc)
        return text if name in text else f"{name}: {text}"
    oom = isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and any(w in str(exc).lower() for w in OOM_MESSAGES))
    if not oom:
        return None
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()  # give the failed frame's blocks back before the next frame
    said = f" ({first_line(exc, 120)})" if str(exc).strip() else ""
    return (f"{name}: out of memory{said}; give a smaller --max-memory (Predictor(max_memory=...)) so that such frames "
            "run in tiles")


def _run(predictor: FramePredictor, frame: Frame) -> Detection:
    """The detection of one frame under the error policy."""
    if frame.error is not None:
        return Detection(error_record(frame.name, frame.error, frame=frame.index, time=frame.time), frame)
    try:
        pred = predictor.predict([frame.image])[0]
    except (DataError, MemoryError, RuntimeError) as exc:
        reason = frame_failure(exc, frame.name)
        if reason is None:
            raise
        log.debug("frame %d: %s", frame.index, reason)
        return Detection(error_record(frame.name, reason, frame=frame.index, time=frame.time), frame)
    return Detection(frame_record(frame.name, pred, frame=frame.index, time=frame.time), frame, pred)


def detect_frames(predictor: FramePredictor, source: FrameSource | Any, *, skip: Container[int] = (),
                  shard: bool = True, max_pixels: int | None = None, prefetch: int = PREFETCH) -> Iterator[Detection]:
    """Run ``predictor`` on every frame of ``source`` and yield one :class:`Detection` per frame, in
    source order, as each is done.

    ``source`` is a :class:`FrameSource` or anything :func:`~irstd.inference.sources.open_source` takes
    (names of files, folders, globs, videos; an iterable of arrays). ``skip`` lists frame indices not to
    run (e.g. those a previous run wrote: ``RecordWriter(resume=True).done``); they are not decoded where
    the format allows. ``shard``: under torchrun, each rank runs its share and every rank yields all
    records (set False to run everything here, e.g. a tracker that needs every frame's pixels). Files that
    ``source`` names are checked against the predictor's memory budget from their headers (``predictor.admit``).
    ``prefetch``: frames of files decoded that far ahead in a reader thread while the predictor runs
    (:func:`~irstd.inference.sources.prefetched`; 0: each frame decoded when it is pulled); the records
    are the same either way.
    """
    source = prefetched(open_source(source, max_pixels=max_pixels, admit=getattr(predictor, "admit", None)), prefetch)
    world = world_size() if shard else 1
    if world == 1:
        for frame in source.frames(None if not skip else (lambda i: i not in skip)):
            yield _run(predictor, frame)
        return
    yield from _sharded(predictor, source, skip, rank(), world)


def _sharded(predictor: FramePredictor, source: FrameSource, skip: Container[int], me: int,
             world: int) -> Iterator[Detection]:
    """Rank ``me`` runs frames ``i`` with ``i % world == me``; round ``k`` holds frames ``k*world …
    (k+1)*world - 1``. After each round the ranks gather their records and agree on the next round that
    has work (skipped frames cost no round), until every rank's share is exhausted."""
    mine = source.frames(lambda i: i % world == me and i not in skip)
    pending = next(mine, None)
    rounds = [r for r in all_gather_object(pending.index // world if pending is not None else None) if r is not None]
    while rounds:
        current = min(rounds)
        own: list[Detection] = []
        if pending is not None and pending.index // world == current:
            own.append(_run(predictor, pending))
            pending = next(mine, None)
        nxt = pending.index // world if pending is not None else None
        parts = all_gather_object(([d.record for d in own], nxt))
        mine_by_frame = {d.record["frame"]: d for d in own}
        gathered = sorted((rec for recs, _ in parts for rec in recs), key=lambda r: r["frame"])
        for rec in gathered:
            yield mine_by_frame.get(rec["frame"], Detection(rec))
        rounds = [r for _, r in parts if r is not None]
