"""Micro-batching: frames from concurrent requests are gathered and run in one model call.

One worker thread owns the predictor (one model instance per process, never touched concurrently);
the event loop only queues frames and hands back results, so health checks stay responsive while
the model runs. The worker can run at a lower OS priority (``nice``) and with its own count of torch
intra-op threads (``threads``), both set on the worker thread before its first torch call, so the
OpenMP threads it spawns inherit them (docs/serve.md, "Under load", says why and what was measured). Frames of the same size are stacked into one batch; frames of other sizes in the same
gathering run as their own batches (``Predictor.probabilities`` groups by shape) rather than padded,
so every frame gets exactly the answer it would get alone.

A frame the model fails on follows the per-frame error policy of ``irstd detect``
(:func:`irstd.inference.pipeline.frame_failure`): a refused frame or one that runs out of memory becomes
a :class:`FrameError` for that frame alone, the service goes on; after an allocation failure the
worker collects garbage and trims the heap, so the frames after it start from free memory.

A job whose future is cancelled (its request timed out or its client left) is dropped unrun: when the
next batch is gathered, and again on the worker just before the model call. Each job's memory
:class:`~irstd.serve.budget.Hold` is released when the model is done with it or it is dropped. The service cannot run
:func:`~irstd.inference.pipeline.detect_frames` itself: that loop runs one source's frames in order,
while this batcher gathers frames from concurrent requests into one model call.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import io
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image

from ..core.errors import DataError
from ..core.memory import malloc_trim
from ..inference import Predictor
from ..inference.pipeline import frame_failure
from ..inference.schema import frame_record
from ..visualize import draw_overlay
from .budget import Hold

__all__ = ["FrameError", "Job", "JobResult", "MicroBatcher", "QueueFullError"]

log = logging.getLogger(__name__)

class QueueFullError(Exception):
    """More frames are waiting than the queue holds."""


class FrameError(Exception):
    """A failure that costs one frame only (the pipeline's policy): ``message`` names the frame;
    ``refused`` for a frame the predictor refused (:class:`DataError`), else it ran out of memory."""

    def __init__(self, message: str, refused: bool) -> None:
        super().__init__(message)
        self.message, self.refused = message, refused


@dataclass
class Job:
    """One frame to run and what the client asked back."""

    name: str
    frame: np.ndarray  # (H, W) float32, native range
    threshold: float
    overlay: bool = False
    mask: bool = False
    enqueued: float = field(default_factory=time.perf_counter)
    future: asyncio.Future | None = None
    hold: Hold | None = None  #: the frame's share of the memory budget, released once the model is done with it

    def release(self) -> None:
        if self.hold is not None:
            self.hold.release()

    @property
    def cancelled(self) -> bool:
        """Its request gave up (timed out or its client left): nobody waits for the answer."""
        return self.future is not None and self.future.done()


@dataclass
class JobResult:
    """A frame record (the ``irstd detect`` schema) and where its time went."""

    record: dict[str, Any]
    queue_ms: float
    inference_ms: float  #: the model call of this frame's batch (shared by the batch's frames)
    batch_size: int
    batch_start: float = 0.0  #: perf_counter when that model call began: frames of one call share it


def _png_data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _finish(predictor: Predictor, job: Job, prob: np.ndarray) -> dict[str, Any]:
    """Threshold, targets and the optional pictures of one frame."""
    pred = predictor.prediction(prob, job.threshold, frame=job.frame)
    extra = {}
    if job.overlay:
        extra["overlay"] = _png_data_url(draw_overlay(job.frame, pred.targets, pred.mask))
    if job.mask:
        extra["mask"] = _png_data_url(Image.fromarray(np.where(pred.mask, 255, 0).astype(np.uint8)))
    return frame_record(job.name, pred, **extra)


def _init_worker(threads: int | None, nice: int) -> None:
    """Runs once on the model's thread, before any torch call on it.

    Linux keeps a nice value per thread and a new thread inherits its creator's: OpenMP's pool, made by
    this thread's first parallel region, gets the same priority, so the event loop wins the CPU.
    """
    if nice:
        try:
            tid = threading.get_native_id()
            # relative to what the thread inherited: a server started under `nice` keeps the gap
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
        except (AttributeError, OSError) as exc:  # not Linux/BSD, or a sandbox forbids it
            log.warning("cannot lower the model thread's priority (nice %d): %s", nice, exc)
    if threads is not None:
        torch.set_num_threads(threads)  # per thread under OpenMP: must run here, not on the main thread


def _worker_settings() -> dict[str, int | None]:
    """The model thread's effective settings (called on that thread)."""
    try:
        nice: int | None = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    except (AttributeError, OSError):
        nice = None
    return {"threads": torch.get_num_threads(), "nice": nice}


class MicroBatcher:
    """Gathers up to ``max_batch`` frames (waiting at most ``max_wait_ms`` after the first) per model call.

    ``on_batch(size, seconds)`` is called from the worker thread after every model call (metrics).
    ``threads``: torch intra-op threads of the model thread (None: leave torch's setting); ``nice``: how
    much to lower the model thread's OS priority (0: not at all).
    """

    def __init__(self, predictor: Predictor, *, max_batch: int = 16, max_wait_ms: float = 2.0, max_queue: int = 64,
                 on_batch: Callable[[int, float], None] | None = None, threads: int | None = None,
                 nice: int = 0) -> None:
        self.predictor = predictor
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.on_batch = on_batch
        self.on_drop: Callable[[int], None] | None = None  #: called with the count of jobs dropped unrun
        self.dropped = 0  #: jobs dropped unrun so far
        self._queue: asyncio.Queue[Job] | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="irstd-model",
                                            initializer=_init_worker, initargs=(threads, nice))
        self.worker: dict[str, int | None] = {}  #: the model thread's effective threads and nice, once started

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def depth(self) -> int:
        """Frames waiting for the model."""
        return self._queue.qsize() if self._queue is not None else 0

    async def start(self) -> None:
        """Start gathering on the running loop."""
        self._queue = asyncio.Queue(self.max_queue)
        self._task = asyncio.create_task(self._gather_loop(), name="irstd-batcher")
        self.worker = await self.run_in_worker(_worker_settings)

    async def stop(self) -> None:
        """Stop gathering; frames still queued fail with ``RuntimeError``."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        while self._queue is not None and not self._queue.empty():
            job = self._queue.get_nowait()
            job.release()
            if job.future is not None and not job.future.done():
                job.future.set_exception(RuntimeError("server is shutting down"))
        # the batch in flight (if any) finishes; nothing queued after it runs
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def run_in_worker(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` on the model's thread (warm-up, anything that touches the predictor)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def submit(self, jobs: Sequence[Job]) -> list[asyncio.Future]:
        """Queue all of ``jobs`` or none (QueueFullError); returns one future per job."""
        if self._queue is None or not self.running:
            raise RuntimeError("the batcher is not running")
        if self._queue.qsize() + len(jobs) > self.max_queue:
            raise QueueFullError(f"{self._queue.qsize()} frames waiting (limit {self.max_queue})")
        loop = asyncio.get_running_loop()
        for job in jobs:
            job.future = loop.create_future()
            self._queue.put_nowait(job)
        return [job.future for job in jobs]  # type: ignore[misc]

    async def _gather(self) -> list[Job]:
        """The next batch: the first waiting job, then whatever arrives within max_wait, up to max_batch."""
        assert self._queue is not None
        batch = [await self._queue.get()]
        deadline = time.perf_counter() + self.max_wait
        while len(batch) < self.max_batch:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            # polling, not wait_for(queue.get()): a get cancelled by its timeout can lose an item
            await asyncio.sleep(min(remaining, 0.0005))
        return self._drop_cancelled(batch)

    def _drop_cancelled(self, batch: list[Job]) -> list[Job]:
        """The jobs someone still waits for; the others are released and counted (event loop only)."""
        live = [job for job in batch if not job.cancelled]
        if len(live) < len(batch):
            for job in batch:
                if job.cancelled:
                    job.release()
            self._count_dropped(len(batch) - len(live))
        return live

    def _count_dropped(self, n: int) -> None:
        self.dropped += n
        if self.on_drop is not None:
            self.on_drop(n)

    async def _gather_loop(self) -> None:
        while True:
            batch = await self._gather()
            if batch:
                await self._run_batch(batch)
            del batch  # an idle service must not keep the last batch's frames alive (up to 16 large arrays)

    async def _run_batch(self, batch: list[Job]) -> None:
        """Run one gathered batch on the model's thread and hand each job its result."""
        try:
            results = await self.run_in_worker(self._run, batch)
        except Exception as exc:  # never leave a client hanging; _run guards each frame already
            log.exception("batch of %d failed", len(batch))
            results = [exc] * len(batch)
        finally:  # the model is done with these frames: their memory is free again
            for job in batch:
                job.release()
        skipped = sum(result is None for result in results)
        if skipped:
            self._count_dropped(skipped)
        for job, result in zip(batch, results):
            if result is not None and job.future is not None and not job.future.done():
                if isinstance(result, BaseException):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)

    def _probabilities(self, frames: list[np.ndarray]) -> list[np.ndarray | Exception]:
        try:
            return list(self.predictor.probabilities(frames))
        except Exception:
            if len(frames) == 1:
                raise
            # a frame that breaks the model must not fail the frames batched with it: run each alone
            out: list[np.ndarray | Exception] = []
            for frame in frames:
                try:
                    out.append(self.predictor.probabilities([frame])[0])
                except Exception as exc:  # noqa: PERF203 (rare path)
                    out.append(exc)
            return out

    def _run(self, batch: list[Job]) -> list[JobResult | Exception | None]:
        """Worker thread: one model call for the batch, then each frame's targets and pictures; None for a
        job cancelled by the time the worker reached it (not run)."""
        out: list[JobResult | Exception | None] = [None] * len(batch)
        # its request may have given up while this batch waited for the worker: do not run it
        live = [i for i, job in enumerate(batch) if not job.cancelled]
        if not live:
            return out
        start = time.perf_counter()
        try:
            probs = self._probabilities([batch[i].frame for i in live])
        except Exception as exc:
            log.exception("model failed on a frame")
            probs = [exc]
        seconds = time.perf_counter() - start
        if self.on_batch is not None:
            self.on_batch(len(live), seconds)
        allocation_failed = False
        for i, prob in zip(live, probs):
            job = batch[i]
            if isinstance(prob, Exception):
                # the pipeline's policy (oneDNN's "could not create a primitive" included); in this thread: it
                # frees the failed frame's CUDA blocks
                reason = frame_failure(prob, job.name)
                allocation_failed |= reason is not None and not isinstance(prob, DataError)
                out[i] = prob if reason is None else FrameError(reason, isinstance(prob, DataError))
                continue
            if job.cancelled:  # nobody waits for its targets and pictures (it ran: not counted as dropped)
                out[i] = RuntimeError("cancelled")
                continue
            try:
                record = _finish(self.predictor, job, prob)
            except Exception as exc:
                log.exception("post-processing failed for %s", job.name)
                out[i] = exc
                continue
            out[i] = JobResult(record, (start - job.enqueued) * 1000, seconds * 1000, len(live), start)
        if allocation_failed:
            del probs  # the failed call's buffers, then the heap back to the system: the next frames start clean
            gc.collect()
            malloc_trim()
        return out

