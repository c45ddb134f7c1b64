"""What one running service holds: the predictor, its micro-batcher, its memory budget, the telemetry and
whether the model is warm; its start-up and shut-down (:meth:`ServiceState.lifespan`) and the way a
request's frames go through the model within the time limit, dropped when the client leaves."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable

import numpy as np
from anyio import CapacityLimiter
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..core.memory import malloc_trim
from ..inference import Predictor
from ..inference.schema import detections_document
from .batcher import Job, JobResult, MicroBatcher, QueueFullError
from ..inference.memory_budget import available_memory, format_bytes
from .budget import Budget, BudgetBusy, BudgetTooLarge, Hold, frame_bytes
from .config import ServeConfig
from .requests import ApiError, budget_error, check_api_key, client_gone
from .telemetry import Telemetry

__all__ = ["DetectOptions", "ServiceState"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectOptions:
    """What a detect request asks for besides its frames."""

    threshold: float  #: probability threshold (the server's default when the request gives none)
    overlay: bool = False  #: add the frame with targets boxed, a PNG data URL
    mask: bool = False  #: add the binary mask, a PNG data URL


class ServiceState:
    """One model served: ``predictor`` run by one worker thread through a :class:`MicroBatcher`;
    ``name`` is how the user named the model, reported as ``checkpoint`` in every answer."""

    def __init__(self, predictor: Predictor, config: ServeConfig, name: str) -> None:
        self.predictor, self.config, self.name = predictor, config, name
        self.telemetry = Telemetry()
        self.batcher = MicroBatcher(predictor, max_batch=config.max_batch, max_wait_ms=config.max_wait_ms,
                                    max_queue=config.max_queue, on_batch=self._count_batch, threads=config.threads,
                                    nice=config.worker_nice)
        self.batcher.on_drop = self.telemetry.dropped.inc
        self.telemetry.queue_depth.set_function(self.batcher.depth)
        self.budget = Budget(inflight_limit(config), on_idle=self._trim_soon)
        self.frame_bpp = predictor.frame_bytes_per_pixel()  # bytes a frame's pixel is charged
        self.telemetry.inflight_bytes.set_function(lambda: self.budget.used)
        self._trim: asyncio.TimerHandle | None = None
        self.ready = False
        self.decoders: CapacityLimiter | None = None  # set on start-up: it belongs to the running event loop

    def _count_batch(self, size: int, seconds: float) -> None:
        self.telemetry.batch_size.observe(size)
        self.telemetry.inference.observe(seconds)
        self.telemetry.frames.inc(size)

    def _trim_soon(self) -> None:
        """Nothing in flight: in a second, if still so, collect cycles and hand freed heap memory back to the
        system (glibc's malloc_trim, off the event loop): after a burst of large frames, freed memory inside the
        heap stays resident until trimmed (docs/serve.md, "Memory")."""
        if self._trim is not None:
            return
        loop = asyncio.get_running_loop()

        def trim() -> None:
            self._trim = None
            if self.budget.holds == 0:
                # cycles first: a refused request's exception, its traceback and the frames' locals (bodies,
                # decoded frames) form a cycle that lives until a full collection, rare by design (gc.freeze
                # keeps it short: only what requests allocated is walked)
                gc.collect()
                loop.run_in_executor(None, malloc_trim)

        self._trim = loop.call_later(1.0, trim)

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Start the worker and warm the model before traffic; stop them after."""
        cfg = self.config
        # Decoding is CPU work that partly holds the GIL: one thread per core at most, rather than one per
        # request in flight (anyio's pool holds 40), so a burst of uploads cannot crowd the event loop and the
        # model off the cores. Measured side by side, the bound neither helped nor hurt (docs/serve.md).
        self.decoders = CapacityLimiter(cfg.decode_threads or os.cpu_count() or 1)
        await self.batcher.start()
        # one small frame through the model first: allocations and lazy set-up happen before traffic
        await self.batcher.run_in_worker(self.predictor.probabilities, [np.zeros((64, 64), np.float32)])
        # What is loaded by now (torch, the model, FastAPI: about 2e5 objects) lives as long as the process.
        # Left to the collector, every full (generation-2) collection walks all of it holding the GIL, which
        # stalls every thread, health checks included, for 50-300 ms on the 2-core CPU (docs/serve.md);
        # frozen, a full collection only walks what requests allocate.
        if cfg.freeze_gc:
            gc.collect()
            gc.freeze()
        self.telemetry.watch_gc()
        self.ready = True
        log.info("serving %s (%s); memory budget of requests in flight %s", self.name, self.predictor.label(),
                 format_bytes(self.budget.limit))
        try:
            yield
        finally:
            self.ready = False
            if self._trim is not None:
                self._trim.cancel()
                self._trim = None
            await self.batcher.stop()
            self.telemetry.watch_gc(False)
            if cfg.freeze_gc:
                gc.unfreeze()  # back to the oldest generation: collectable again (tests start many apps)

    def fail(self, exc: ApiError) -> JSONResponse:
        """The answer to a refused request (counted by reason)."""
        self.telemetry.errors.labels(exc.reason).inc()
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    def authorised(self, request: Request) -> None:
        """Route dependency: the request carries the API key (when one is set)."""
        check_api_key(request, self.config.api_key)

    def options(self, threshold: float | None, overlay: bool, mask: bool) -> DetectOptions:
        """A request's options, the server's threshold when it gives none."""
        return DetectOptions(self.config.threshold if threshold is None else threshold, overlay, mask)

    def charge_frames(self, frames: list[tuple[str, int]], holds: list[Hold]) -> list[Hold]:
        """Charge a request's frames, (name, pixels) from their headers, to the memory budget before any is
        decoded: 413 above the per-request pixel limit or beyond the whole budget, 503 when it does not fit
        beside the requests in flight. One hold per frame, also appended to ``holds`` (the request's)."""
        cfg, total = self.config, sum(px for _, px in frames)
        what = f"{len(frames)} frame{'s' if len(frames) != 1 else ''} of {total:,} pixels in all"
        if total > cfg.max_request_pixels:
            raise ApiError(413, f"{what}, above the per-request limit of {cfg.max_request_pixels:,} pixels "
                                "(send fewer or smaller frames per request)", "too_many_pixels")
        try:
            self.budget.check(frame_bytes(total, self.frame_bpp), what)
        except (BudgetTooLarge, BudgetBusy) as exc:
            raise budget_error(exc, cfg.retry_after_s) from None
        taken = [self.budget.take(frame_bytes(px, self.frame_bpp), name) for name, px in frames]
        holds.extend(taken)
        return taken

    async def run_jobs(self, jobs: list[Job], request: Request, holds: list[Hold]) -> list[JobResult | Exception]:
        """Queue the jobs, wait for their answers within the request's time limit. The queued jobs' holds
        pass to the batcher (it gives them back when the model is done with each frame or drops it); when
        the client leaves first, the request ends (499) and its frames still queued are dropped unrun."""
        retry = {"Retry-After": str(self.config.retry_after_s)}
        if not self.ready:
            raise ApiError(503, "model is not ready yet", "not_ready", retry)
        try:
            futures = self.batcher.submit(jobs)
        except QueueFullError as exc:
            raise ApiError(503, f"server busy: {exc}; retry later", "queue_full", retry) from None
        queued = {id(job.hold) for job in jobs}
        holds[:] = [h for h in holds if id(h) not in queued]
        answered = asyncio.ensure_future(asyncio.wait(futures))
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait([answered, gone], return_when=asyncio.FIRST_COMPLETED)
            if not answered.done():
                raise client_gone()
        finally:  # on the request's timeout or the client's leaving: the batcher skips cancelled jobs
            for f in (*futures, answered, gone):
                f.cancel()
        return [f.result() if f.exception() is None else f.exception() for f in futures]  # type: ignore[misc]

    async def within_time(self, work: Awaitable[JSONResponse]) -> JSONResponse:
        """The per-request limit, from arrival (body upload included) to answer."""
        try:
            return await asyncio.wait_for(work, self.config.timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(504, f"no answer within {self.config.timeout_s:g} s", "timeout") from None

    def document(self, records: list[dict], threshold: float, timing: dict[str, float]) -> dict[str, Any]:
        """The answer to a detect request: the ``irstd detect`` JSON schema, with the request's timing (ms)."""
        return detections_document(records, checkpoint=self.name, threshold=threshold,
                                   precision=self.predictor.label(), timing={k: round(v, 3) for k, v in timing.items()})


async def _disconnected(request: Request) -> None:
    """Returns once the client has closed the connection (call after the body is read)."""
    while (await request.receive())["type"] != "http.disconnect":
        await asyncio.sleep(0.01)  # a stray empty body message: never a busy loop


def inflight_limit(config: ServeConfig) -> int:
    """The memory budget of the requests in flight: ``max_inflight_mb``, else half of what is available now
    (4 GB where the system does not say)."""
    if config.max_inflight_mb is not None:
        return int(config.max_inflight_mb * 1024 * 1024)
    free = available_memory()
    return free // 2 if free else 4 * 1024**3
