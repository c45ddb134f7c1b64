"""The HTTP service: FastAPI routes over one predictor and one micro-batcher.

Routes: ``POST /v1/detect`` (one frame: multipart file or raw body), ``POST /v1/detect/batch``
(multipart, several files), ``GET /v1/models``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics``,
the page at ``/`` and OpenAPI at ``/docs``. Every error answers ``{"error": "<one line>"}``.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import anyio.to_thread
import numpy as np
from anyio import CapacityLimiter
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from ..core.errors import DataError
from ..core.profiling import count_params
from ..core.version import __version__
from ..data.io import ImageTooLargeError, UnsupportedImageError, load_image_bytes
from ..inference import Predictor
from ..inference.schema import detections_document, error_record
from .batcher import Job, JobResult, MicroBatcher, QueueFullError
from .config import ServeConfig
from .telemetry import CONTENT_TYPE_LATEST, Telemetry

__all__ = ["ApiError", "create_app", "model_card"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
_ROUTES = {"/", "/healthz", "/readyz", "/metrics", "/v1/models", "/v1/detect", "/v1/detect/batch", "/docs",
           "/openapi.json"}
_IMAGE_BODY = {"content": {"image/*": {"schema": {"type": "string", "format": "binary"}},
                           "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                           "multipart/form-data": {"schema": {"type": "object", "properties": {
                               "file": {"type": "string", "format": "binary"}}}}}, "required": True}
_BATCH_BODY = {"content": {"multipart/form-data": {"schema": {"type": "object", "properties": {
    "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}, "required": True}


class ApiError(Exception):
    """A request the service refuses: HTTP status, one-line reason, metrics label, extra headers."""

    def __init__(self, status: int, message: str, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.reason, self.headers = status, message, reason, headers or {}


def model_card(predictor: Predictor, name: str, threshold: float | None = None,
               worker: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``GET /v1/models`` says about the model (``threshold``: the server's default; ``worker``: the
    model thread's torch threads and nice value, when the server runs)."""
    model = predictor.model
    meta = getattr(model, "checkpoint_meta", {}) if model is not None else {}
    norm = predictor.normalization
    return {
        "name": getattr(model, "model_name", None) or meta.get("model_name") or name,
        "tag": name,
        "params": count_params(model) if model is not None else None,
        "normalization": {"mean": norm[0], "std": norm[1]} if norm is not None else "per-frame mean and std",
        "input_range": "one channel (colour is reduced to luminance) in its native range: 8-bit 0..255, "
                       "16-bit 0..65535, float as stored",
        "stride": predictor.stride,
        "device": str(predictor.device),
        "backend": predictor.backend,
        "precision": predictor.label(),
        "default_threshold": predictor.threshold if threshold is None else threshold,
        "epoch": meta.get("epoch"),
        "irstd_version": __version__,
        "worker": worker or {},
    }


class _Metrics:
    """Pure ASGI middleware: request count and latency by route (unknown paths count as ``other``)."""

    def __init__(self, app: Any, telemetry: Telemetry) -> None:
        self.app, self.telemetry = app, telemetry

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        route = path if path in _ROUTES else ("/static" if path.startswith("/static/") else "other")
        status = {"code": 500}
        start = time.perf_counter()

        async def send_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.telemetry.latency.labels(route).observe(time.perf_counter() - start)
            self.telemetry.requests.labels(route, str(status["code"])).inc()


async def _read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it exceeds ``limit`` bytes, announced or not."""
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit:
        raise ApiError(413, f"request body of {int(announced)} bytes exceeds the limit of {limit}", "too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body exceeds the limit of {limit} bytes", "too_large")
        chunks.append(chunk)
    return b"".join(chunks)


async def _files(request: Request, body: bytes, max_files: int) -> list[tuple[str, bytes]]:
    """(file name, bytes) of every file part of a multipart body, in order."""
    async def once() -> AsyncIterator[bytes]:
        yield body

    try:
        form = await MultiPartParser(request.headers, once(), max_files=max_files, max_fields=max_files).parse()
    except MultiPartException as exc:
        if "Too many" in exc.message:
            raise ApiError(413, f"too many parts in the multipart body (the limit is {max_files} files)",
                           "too_large") from None
        raise ApiError(422, f"bad multipart body: {exc.message}", "bad_request") from None
    files = []
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                files.append((value.filename or key, await value.read()))
    finally:
        await form.close()
    return files


async def _decode(data: bytes, name: str, max_pixels: int, limiter: CapacityLimiter | None = None) -> np.ndarray:
    """Decode off the event loop, at most ``limiter`` frames at once, mapping each defect to its status."""
    if not data:
        raise ApiError(422, f"{name}: empty body; send an image as the body or as a multipart file", "bad_request")
    try:
        return await anyio.to_thread.run_sync(lambda: load_image_bytes(data, name, max_pixels=max_pixels),
                                              limiter=limiter)
    except ImageTooLargeError as exc:
        raise ApiError(413, str(exc), "too_many_pixels") from None
    except UnsupportedImageError as exc:
        raise ApiError(415, str(exc), "unsupported") from None
    except DataError as exc:
        raise ApiError(422, str(exc), "undecodable") from None


def create_app(predictor: Predictor, config: ServeConfig | None = None, *, name: str = "model") -> FastAPI:
    """The service for ``predictor`` (loaded once, run by one worker thread); ``name`` is how the user
    named the model (checkpoint path or detector name), reported as ``checkpoint`` in every answer."""
    cfg = config or ServeConfig()
    telemetry = Telemetry()

    def on_batch(size: int, seconds: float) -> None:
        telemetry.batch_size.observe(size)
        telemetry.inference.observe(seconds)
        telemetry.frames.inc(size)

    batcher = MicroBatcher(predictor, max_batch=cfg.max_batch, max_wait_ms=cfg.max_wait_ms,
                           max_queue=cfg.max_queue, on_batch=on_batch, threads=cfg.threads, nice=cfg.worker_nice)
    telemetry.queue_depth.set_function(batcher.depth)
    state: dict[str, Any] = {"ready": False, "decoders": None}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Decoding is CPU work that partly holds the GIL: one thread per core at most, rather than one per
        # request in flight (anyio's pool holds 40), so a burst of uploads cannot crowd the event loop and the
        # model off the cores. Measured side by side, the bound neither helped nor hurt (docs/serve.md).
        state["decoders"] = CapacityLimiter(cfg.decode_threads or os.cpu_count() or 1)
        await batcher.start()
        # one small frame through the model first: allocations and lazy set-up happen before traffic
        await batcher.run_in_worker(predictor.probabilities, [np.zeros((64, 64), np.float32)])
        # What is loaded by now (torch, the model, FastAPI: about 2e5 objects) lives as long as the process.
        # Left to the collector, every full (generation-2) collection walks all of it holding the GIL, which
        # stalls every thread, health checks included, for 50-300 ms on the 2-core CPU (docs/serve.md);
        # frozen, a full collection only walks what requests allocate.
        if cfg.freeze_gc:
            gc.collect()
            gc.freeze()
        telemetry.watch_gc()
        state["ready"] = True
        log.info("serving %s (%s)", name, predictor.label())
        try:
            yield
        finally:
            state["ready"] = False
            await batcher.stop()
            telemetry.watch_gc(False)
            if cfg.freeze_gc:
                gc.unfreeze()  # back to the oldest generation: collectable again (tests start many apps)

    app = FastAPI(title="irstd", version=__version__, lifespan=lifespan,
                  description="Infrared small target detection. Answers use the `irstd detect` JSON schema.")
    app.state.batcher, app.state.telemetry, app.state.config = batcher, telemetry, cfg

    def fail(exc: ApiError) -> JSONResponse:
        telemetry.errors.labels(exc.reason).inc()
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return fail(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'query')}: {e.get('msg', 'invalid')}"
                 for e in exc.errors()]
        return fail(ApiError(422, "; ".join(parts) or "invalid request", "bad_request"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return fail(ApiError(exc.status_code, str(exc.detail), "http", dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return fail(ApiError(500, "internal server error", "internal"))

    def authorised(request: Request) -> None:
        if cfg.api_key is None:
            return
        given = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if given is None and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if given is None or not hmac.compare_digest(given.encode(), cfg.api_key.encode()):
            raise ApiError(401, "missing or wrong API key (send X-API-Key or Authorization: Bearer)",
                           "unauthorized", {"WWW-Authenticate": "Bearer"})

    async def run_jobs(jobs: list[Job]) -> list[JobResult | Exception]:
        """Queue the jobs, wait for their answers within the request's time limit."""
        if not state["ready"]:
            raise ApiError(503, "model is not ready yet", "not_ready", {"Retry-After": str(cfg.retry_after_s)})
        try:
            futures = batcher.submit(jobs)
        except QueueFullError as exc:
            raise ApiError(503, f"server busy: {exc}; retry later", "queue_full",
                           {"Retry-After": str(cfg.retry_after_s)}) from None
        try:
            await asyncio.wait(futures)
        finally:  # on the request's timeout: the batcher skips cancelled jobs still in the queue
            for f in futures:
                f.cancel()
        return [f.result() if f.exception() is None else f.exception() for f in futures]  # type: ignore[misc]

    async def within_time(work: Any) -> JSONResponse:
        """The per-request limit, from arrival (body upload included) to answer."""
        try:
            return await asyncio.wait_for(work, cfg.timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(504, f"no answer within {cfg.timeout_s:g} s", "timeout") from None

    def document(records: list[dict], threshold: float, timing: dict[str, float]) -> dict[str, Any]:
        return detections_document(records, checkpoint=name, threshold=threshold, precision=predictor.label(),
                                   timing={k: round(v, 3) for k, v in timing.items()})

    def threshold_of(value: float | None) -> float:
        return cfg.threshold if value is None else value

    Threshold = Query(None, ge=0.0, le=1.0, description="probability threshold (default: the server's)")
    Overlay = Query(False, description="add `overlay`: the frame with targets boxed, a PNG data URL")
    Mask = Query(False, description="add `mask`: the binary mask, a PNG data URL")

    @app.post("/v1/detect", dependencies=[Depends(authorised)], openapi_extra={"requestBody": _IMAGE_BODY},
              summary="detect targets in one frame (multipart file or raw image body)")
    async def detect(request: Request, threshold: float | None = Threshold, overlay: bool = Overlay,
                     mask: bool = Mask, name: str = Query("frame", max_length=255,
                                                          description="frame name for a raw body")) -> JSONResponse:
        return await within_time(detect_one(request, threshold_of(threshold), overlay, mask, name))

    async def detect_one(request: Request, thr: float, overlay: bool, mask: bool, name: str) -> JSONResponse:
        start = time.perf_counter()
        body = await _read_body(request, cfg.max_body_bytes)
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            files = await _files(request, body, 2)
            if len(files) != 1:
                raise ApiError(422, f"send exactly one file to /v1/detect (got {len(files)}); "
                                    "use /v1/detect/batch for several", "bad_request")
            name, data = files[0]
        else:
            data = body
        frame = await _decode(data, name, cfg.max_pixels, state["decoders"])
        decoded = time.perf_counter()
        (result,) = await run_jobs([Job(name, frame, thr, overlay, mask, enqueued=decoded)])
        if isinstance(result, Exception):
            log.error("%s: %s", name, result)
            raise ApiError(500, f"{name}: the model failed on this frame", "internal")
        timing = {"decode_ms": (decoded - start) * 1000, "queue_ms": result.queue_ms,
                  "inference_ms": result.inference_ms, "batch_size": result.batch_size,
                  "total_ms": (time.perf_counter() - start) * 1000}
        return JSONResponse(document([result.record], thr, timing))

    @app.post("/v1/detect/batch", dependencies=[Depends(authorised)], openapi_extra={"requestBody": _BATCH_BODY},
              summary="detect targets in several frames (multipart files); unreadable ones get error records")
    async def detect_batch(request: Request, threshold: float | None = Threshold, overlay: bool = Overlay,
                           mask: bool = Mask) -> JSONResponse:
        return await within_time(detect_many(request, threshold_of(threshold), overlay, mask))

    async def detect_many(request: Request, thr: float, overlay: bool, mask: bool) -> JSONResponse:
        start = time.perf_counter()
        body = await _read_body(request, cfg.max_body_bytes)
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise ApiError(415, "send the frames as multipart/form-data files", "unsupported")
        files = await _files(request, body, cfg.max_batch_frames)
        if not files:
            raise ApiError(422, "no file in the multipart body", "bad_request")
        if len(files) > cfg.max_batch_frames:
            raise ApiError(413, f"{len(files)} files, more than the limit of {cfg.max_batch_frames}", "too_large")
        records: list[dict | None] = [None] * len(files)
        jobs, slots = [], []
        for i, (fname, data) in enumerate(files):
            try:
                frame = await _decode(data, fname, cfg.max_pixels, state["decoders"])
                jobs.append(Job(fname, frame, thr, overlay, mask))
                slots.append(i)
            except ApiError as exc:  # one bad frame: an error record, as `irstd detect` writes it
                telemetry.errors.labels(exc.reason).inc()
                records[i] = error_record(fname, exc.message)
        decoded = time.perf_counter()
        results = await run_jobs(jobs) if jobs else []
        for i, job, result in zip(slots, jobs, results):
            records[i] = error_record(job.name, "the model failed on this frame") if isinstance(result, Exception) \
                else result.record
        ok = [r for r in results if isinstance(r, JobResult)]
        timing = {"decode_ms": (decoded - start) * 1000,
                  "queue_ms": max((r.queue_ms for r in ok), default=0.0),
                  "inference_ms": sum({id(r): r.inference_ms for r in ok}.values()) if ok else 0.0,
                  "total_ms": (time.perf_counter() - start) * 1000}
        return JSONResponse(document(records, thr, timing))  # type: ignore[arg-type]

    @app.get("/v1/models", dependencies=[Depends(authorised)], summary="the model this server runs")
    async def models() -> dict[str, Any]:
        return {"models": [model_card(predictor, name, cfg.threshold, batcher.worker)]}

    @app.get("/healthz", summary="the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="the model is loaded and warm")
    async def readyz() -> JSONResponse:
        ready = state["ready"] and batcher.running
        return JSONResponse({"ready": ready, "queue": batcher.depth()}, status_code=200 if ready else 503)

    @app.get("/metrics", dependencies=[Depends(authorised)], summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(telemetry.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if cfg.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=cfg.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["*"])
    app.add_middleware(_Metrics, telemetry=telemetry)
    return app
