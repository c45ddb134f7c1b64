"""Request decoding of the service: body, multipart files, frames and the API key, each defect an
:class:`ApiError` (HTTP status, one-line reason, metrics label)."""

from __future__ import annotations

import hmac
from typing import AsyncIterator

import anyio.to_thread
import numpy as np
from anyio import CapacityLimiter
from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from ..core.errors import DataError
from ..data.io import ImageTooLargeError, UnsupportedImageError, load_image_bytes

__all__ = ["ApiError", "check_api_key", "decode_frame", "multipart_files", "read_body"]


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


async def read_body(request: Request, limit: int) -> bytes:
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


async def decode_frame(data: bytes, name: str, max_pixels: int, limiter: CapacityLimiter | None = None) -> np.ndarray:
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
