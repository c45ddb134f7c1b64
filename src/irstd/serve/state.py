"""What one running service holds: the predictor, its micro-batcher, the telemetry and whether the model
is warm; its start-up and shut-down (:meth:`ServiceState.lifespan`) and the way a request's frames go
through the model within the time limit."""

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

from ..inference import Predictor
from ..inference.schema import detections_document
from .batcher import Job, JobResult, MicroBatcher, QueueFullError
from .config import ServeConfig
from .requests import ApiError, check_api_key
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
        self.telemetry.queue_depth.set_function(self.batcher.depth)
        self.ready = False
        self.decoders: CapacityLimiter | None = None  # set on start-up: it belongs to the running event loop

    def _count_batch(self, size: int, seconds: float) -> None:
        self.telemetry.batch_size.observe(size)
        self.telemetry.inference.observe(seconds)
        self.telemetry.frames.inc(size)

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
        log.info("serving %s (%s)", self.name, self.predictor.label())
        try:
            yield
        finally:
            self.ready = False
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

    async def run_jobs(self, jobs: list[Job]) -> list[JobResult | Exception]:
        """Queue the jobs, wait for their answers within the request's time limit."""
        retry = {"Retry-After": str(self.config.retry_after_s)}
        if not self.ready:
            raise ApiError(503, "model is not ready yet", "not_ready", retry)
        try:
            futures = self.batcher.submit(jobs)
        except QueueFullError as exc:
            raise ApiError(503, f"server busy: {exc}; retry later", "queue_full", retry) from None
        try:
            await asyncio.wait(futures)
        finally:  # on the request's timeout: the batcher skips cancelled jobs still in the queue
            for f in futures:
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

