"""The service's routes and error handlers, each group added to an app by one function over a
:class:`~irstd.serve.state.ServiceState`."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import anyio.to_thread

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..core.profiling import count_params
from ..core.version import __version__
from ..inference import Predictor
from ..inference.schema import error_record
from .batcher import FrameError, Job, JobResult
from .requests import ApiError, decode_frame, frame_pixels, multipart_files, read_body
from .state import DetectOptions, ServiceState
from .telemetry import CONTENT_TYPE_LATEST

__all__ = ["ROUTES", "STATIC", "add_detect_routes", "add_error_handlers", "add_info_routes", "model_card"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
#: every path the service answers (the metrics count anything else as ``other``)
ROUTES = {"/", "/healthz", "/readyz", "/metrics", "/v1/models", "/v1/detect", "/v1/detect/batch", "/docs",
          "/openapi.json"}
_IMAGE_BODY = {"content": {"image/*": {"schema": {"type": "string", "format": "binary"}},
                           "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                           "multipart/form-data": {"schema": {"type": "object", "properties": {
                               "file": {"type": "string", "format": "binary"}}}}}, "required": True}
_BATCH_BODY = {"content": {"multipart/form-data": {"schema": {"type": "object", "properties": {
    "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}, "required": True}

_THRESHOLD = Query(None, ge=0.0, le=1.0, description="probability threshold (default: the server's)")
_OVERLAY = Query(False, description="add `overlay`: the frame with targets boxed, a PNG data URL")
_MASK = Query(False, description="add `mask`: the binary mask, a PNG data URL")


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


def add_error_handlers(app: FastAPI, state: ServiceState) -> None:
    """Every error answers ``{"error": "<one line>"}`` with its status; unexpected ones are logged, not shown."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return state.fail(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'query')}: {e.get('msg', 'invalid')}"
                 for e in exc.errors()]
        return state.fail(ApiError(422, "; ".join(parts) or "invalid request", "bad_request"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return state.fail(ApiError(exc.status_code, str(exc.detail), "http", dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return state.fail(ApiError(500, "internal server error", "internal"))


def _record(name: str, result: JobResult | Exception) -> dict:
    """A frame's record in a batch answer: its detections, or its error (the pipeline's line for a
    :class:`FrameError`, as ``irstd detect`` writes it)."""
    if isinstance(result, FrameError):
        return error_record(name, result.message)
    if isinstance(result, Exception):
        return error_record(name, "the model failed on this frame")
    return result.record


@contextmanager
def _holds(state: ServiceState) -> Iterator[list]:
    """A request's memory holds (its body, its frames until they are queued), all given back when it ends:
    answered, refused, timed out or left by its client. Queued frames' holds pass to the batcher."""
    holds: list = [state.budget.take(0, "the request body")]
    try:
        yield holds
    finally:
        for hold in holds:
            hold.release()


async def _body(state: ServiceState, request: Request, holds: list) -> bytes:
    cfg = state.config
    return await read_body(request, cfg.max_body_bytes, holds[0], cfg.body_timeout_s, cfg.retry_after_s)


async def _pixels(state: ServiceState, files: list[tuple[str, bytes]]) -> list[int | ApiError]:
    """Each file's pixels from its header (or the ApiError of its defect), read off the event loop."""
    def read() -> list[int | ApiError]:
        out: list[int | ApiError] = []
        for name, data in files:
            try:
                out.append(frame_pixels(data, name, state.config.max_pixels))
            except ApiError as exc:
                out.append(exc)
        return out

    return await anyio.to_thread.run_sync(read, limiter=state.decoders)


async def detect_one(state: ServiceState, request: Request, opts: DetectOptions, name: str) -> JSONResponse:
    """``POST /v1/detect``: one frame, as the raw body or as the one file of a multipart body."""
    cfg = state.config
    start = time.perf_counter()
    with _holds(state) as holds:
        body = await _body(state, request, holds)
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            files = await multipart_files(request, body, 2)
            if len(files) != 1:
                raise ApiError(422, f"send exactly one file to /v1/detect (got {len(files)}); "
                                    "use /v1/detect/batch for several", "bad_request")
            name, data = files[0]
        else:
            data = body
        (pixels,) = await _pixels(state, [(name, data)])
        if isinstance(pixels, ApiError):
            raise pixels
        (hold,) = state.charge_frames([(name, pixels)], holds)
        frame = await decode_frame(data, name, cfg.max_pixels, state.decoders)
        decoded = time.perf_counter()
        job = Job(name, frame, opts.threshold, opts.overlay, opts.mask, enqueued=decoded, hold=hold)
        (result,) = await state.run_jobs([job], request, holds)
    if isinstance(result, FrameError):  # refused (422) or out of memory now (503): this frame only
        raise ApiError(422, result.message, "refused") if result.refused else \
            ApiError(503, result.message, "out_of_memory", {"Retry-After": str(cfg.retry_after_s)})
    if isinstance(result, Exception):
        log.error("%s: %s", name, result)
        raise ApiError(500, f"{name}: the model failed on this frame", "internal")
    timing = {"decode_ms": (decoded - start) * 1000, "queue_ms": result.queue_ms,
              "inference_ms": result.inference_ms, "batch_size": result.batch_size,
              "total_ms": (time.perf_counter() - start) * 1000}
    return JSONResponse(state.document([result.record], opts.threshold, timing))


async def detect_many(state: ServiceState, request: Request, opts: DetectOptions) -> JSONResponse:
    """``POST /v1/detect/batch``: the files of a multipart body; an unreadable one gets an error record.
    The request's frames are charged together from their headers (413/503 before any is decoded)."""
    cfg = state.config
    start = time.perf_counter()
    with _holds(state) as holds:
        body = await _body(state, request, holds)
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise ApiError(415, "send the frames as multipart/form-data files", "unsupported")
        files = await multipart_files(request, body, cfg.max_batch_frames)
        if not files:
            raise ApiError(422, "no file in the multipart body", "bad_request")
        if len(files) > cfg.max_batch_frames:
            raise ApiError(413, f"{len(files)} files, more than the limit of {cfg.max_batch_frames}", "too_large")
        records: list[dict | None] = [None] * len(files)
        sizes = await _pixels(state, files)
        readable = []
        for i, ((fname, _), px) in enumerate(zip(files, sizes)):
            if isinstance(px, ApiError):  # one bad frame: an error record, as `irstd detect` writes it
                state.telemetry.errors.labels(px.reason).inc()
                records[i] = error_record(fname, px.message)
            else:
                readable.append(i)
        frame_holds = state.charge_frames([(files[i][0], sizes[i]) for i in readable], holds)  # type: ignore[misc]
        jobs, slots = [], []
        for i, hold in zip(readable, frame_holds):
            fname, data = files[i]
            try:
                frame = await decode_frame(data, fname, cfg.max_pixels, state.decoders)
            except ApiError as exc:
                hold.release()
                state.telemetry.errors.labels(exc.reason).inc()
                records[i] = error_record(fname, exc.message)
                continue
            jobs.append(Job(fname, frame, opts.threshold, opts.overlay, opts.mask, hold=hold))
            slots.append(i)
        del files, body  # the encoded bytes are not needed any more
        decoded = time.perf_counter()
        results = await state.run_jobs(jobs, request, holds) if jobs else []
    for i, job, result in zip(slots, jobs, results):
        records[i] = _record(job.name, result)
    ok = [r for r in results if isinstance(r, JobResult)]
    timing = {"decode_ms": (decoded - start) * 1000,
              "queue_ms": max((r.queue_ms for r in ok), default=0.0),
              # each model call once: the frames of one micro-batch share its time (summing them per frame
              # counted a call of 8 frames 8 times, and inference_ms exceeded total_ms)
              "inference_ms": sum({r.batch_start: r.inference_ms for r in ok}.values()),
              "model_calls": len({r.batch_start for r in ok}),
              "total_ms": (time.perf_counter() - start) * 1000}
    return JSONResponse(state.document(records, opts.threshold, timing))  # type: ignore[arg-type]


def add_detect_routes(app: FastAPI, state: ServiceState) -> None:
    """``POST /v1/detect`` and ``POST /v1/detect/batch``, behind the API key and the time limit."""
    auth: list[Callable] = [Depends(state.authorised)]

    @app.post("/v1/detect", dependencies=auth, openapi_extra={"requestBody": _IMAGE_BODY},
              summary="detect targets in one frame (multipart file or raw image body)")
    async def detect(request: Request, threshold: float | None = _THRESHOLD, overlay: bool = _OVERLAY,
                     mask: bool = _MASK, name: str = Query("frame", max_length=255,
                                                          description="frame name for a raw body")) -> JSONResponse:
        return await state.within_time(detect_one(state, request, state.options(threshold, overlay, mask), name))

    @app.post("/v1/detect/batch", dependencies=auth, openapi_extra={"requestBody": _BATCH_BODY},
              summary="detect targets in several frames (multipart files); unreadable ones get error records")
    async def detect_batch(request: Request, threshold: float | None = _THRESHOLD, overlay: bool = _OVERLAY,
                           mask: bool = _MASK) -> JSONResponse:
        return await state.within_time(detect_many(state, request, state.options(threshold, overlay, mask)))


def add_info_routes(app: FastAPI, state: ServiceState) -> None:
    """The model card, health and readiness, Prometheus metrics and the page for people."""
    auth: list[Callable] = [Depends(state.authorised)]

    @app.get("/v1/models", dependencies=auth, summary="the model this server runs")
    async def models() -> dict[str, Any]:
        return {"models": [model_card(state.predictor, state.name, state.config.threshold, state.batcher.worker)]}

    @app.get("/healthz", summary="the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="the model is loaded and warm")
    async def readyz() -> JSONResponse:
        ready = state.ready and state.batcher.running
        return JSONResponse({"ready": ready, "queue": state.batcher.depth()}, status_code=200 if ready else 503)

    @app.get("/metrics", dependencies=auth, summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(state.telemetry.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")
