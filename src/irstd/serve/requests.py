"""Request decoding of the service: body, multipart files, frames and the API key, each defect an
:class:`ApiError` (HTTP status, one-line reason, metrics label)."""

from __future__ import annotations

import asyncio
import hmac
from typing import AsyncIterator

import anyio.to_thread
import numpy as np
from anyio import CapacityLimiter
from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

from ..core.errors import DataError
from ..data.io import ImageTooLargeError, UnsupportedImageError, load_image_bytes, read_header_bytes
from .budget import BODY_FACTOR, BudgetBusy, BudgetTooLarge, Hold

__all__ = ["ApiError", "CLIENT_GONE", "budget_error", "check_api_key", "client_gone", "decode_frame", "frame_pixels",
           "multipart_files", "read_body"]

#: the status recorded for a request whose client left before its answer (nginx's convention; nobody
#: receives it, the metrics and the log show it)
CLIENT_GONE = 499


class ApiError(Exception):
    """A request the service refuses: HTTP status, one-line reason, metrics label, extra headers."""

    def __init__(self, status: int, message: str, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.reason, self.headers = status, message, reason, headers or {}


def check_api_key(request: Request, api_key: str | None) -> None:
    """Refuse (401) a request without ``api_key`` (as ``X-API-Key`` or ``Authorization: Bearer``); None: open."""
    if api_key is None:
        return
    given = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    if given is None and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if given is None or not hmac.compare_digest(given.encode(), api_key.encode()):
        raise ApiError(401, "missing or wrong API key (send X-API-Key or Authorization: Bearer)",
                       "unauthorized", {"WWW-Authenticate": "Bearer"})


def client_gone() -> ApiError:
    """The refusal of a request whose client closed the connection."""
    return ApiError(CLIENT_GONE, "the client closed the connection before the answer", "client_gone")


def budget_error(exc: BudgetTooLarge | BudgetBusy, retry_after_s: int) -> ApiError:
    """A memory-budget refusal: 413 when the request can never fit, else 503 with ``Retry-After``."""
    if isinstance(exc, BudgetTooLarge):
        return ApiError(413, str(exc), "too_much_memory")
    return ApiError(503, f"server busy: {exc}; retry later", "memory_busy", {"Retry-After": str(retry_after_s)})


async def read_body(request: Request, limit: int, hold: Hold | None = None, timeout: float | None = None,
                    retry_after_s: int = 1) -> bytes:
    """The whole body, refusing (413) as soon as it exceeds ``limit`` bytes, announced or not; charged to
    ``hold`` (:data:`BODY_FACTOR` per byte: 413/503 when the memory budget cannot take it) and delivered
    within ``timeout`` seconds (408: a client that trickles its body cannot hold the server)."""
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit:
        raise ApiError(413, f"request body of {int(announced)} bytes exceeds the limit of {limit}", "too_large")
    chunks, size = [], 0
    try:
        if hold is not None and announced is not None and announced.isdigit():
            hold.grow(int(announced) * BODY_FACTOR, f"a body of {int(announced)} bytes")  # before reading it
        charged = hold.nbytes if hold is not None else 0
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, f"request body exceeds the limit of {limit} bytes", "too_large")
                if hold is not None and size * BODY_FACTOR > charged:  # a chunked body: charged as it comes
                    hold.grow(size * BODY_FACTOR - charged, f"a body of {size}+ bytes")
                    charged = hold.nbytes
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(408, f"the request body did not arrive within {timeout:g} s ({size} bytes came)",
                       "body_timeout") from None
    except ClientDisconnect:
        raise client_gone() from None
    except (BudgetTooLarge, BudgetBusy) as exc:
        raise budget_error(exc, retry_after_s) from None
    return b"".join(chunks)


async def multipart_files(request: Request, body: bytes, max_files: int) -> list[tuple[str, bytes]]:
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


def _header_error(exc: DataError) -> ApiError:
    if isinstance(exc, ImageTooLargeError):
        return ApiError(413, str(exc), "too_many_pixels")
    if isinstance(exc, UnsupportedImageError):
        return ApiError(415, str(exc), "unsupported")
    return ApiError(422, str(exc), "undecodable")


def frame_pixels(data: bytes, name: str, max_pixels: int) -> int:
    """Pixels of an encoded frame from its header alone (nothing decoded), or the :class:`ApiError` of
    its defect (empty, not an image, above ``max_pixels``)."""
    if not data:
        raise ApiError(422, f"{name}: empty body; send an image as the body or as a multipart file", "bad_request")
    try:
        h, w = read_header_bytes(data, name, max_pixels=max_pixels).size
    except DataError as exc:
        raise _header_error(exc) from None
    return h * w


async def decode_frame(data: bytes, name: str, max_pixels: int, limiter: CapacityLimiter | None = None) -> np.ndarray:
    """Decode off the event loop, at most ``limiter`` frames at once, mapping each defect to its status."""
    if not data:
        raise ApiError(422, f"{name}: empty body; send an image as the body or as a multipart file", "bad_request")
    try:
        return await anyio.to_thread.run_sync(lambda: load_image_bytes(data, name, max_pixels=max_pixels),
                                              limiter=limiter)
    except DataError as exc:
        raise _header_error(exc) from None
