"""Serving an app with uvicorn: in the foreground (the CLI) or on a background thread (tests, benchmarks).

Both take uvicorn's settings from the app's :class:`ServeConfig` (:func:`uvicorn_config`): keep-alive
timeout, the size of a request head, the connection limit and the graceful-shutdown timeout. uvicorn
(0.55) has no timeout for a request head: a client that opens a connection and sends its headers a
byte at a time, or nothing, holds the connection for ever. The service's HTTP/1.1 protocol
(:func:`header_timeout_protocol`, uvicorn's h11 protocol with one timer added) closes a connection whose
request line and headers are not complete ``header_timeout_s`` after it opened or after its previous
answer, and answers 431 to a head longer than ``max_header_bytes`` however it arrives; the body has its
own limit (``body_timeout_s``, 408, in the request handler).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..core.errors import ConfigError
from .config import ServeConfig

__all__ = ["BackgroundServer", "header_timeout_protocol", "run_server", "uvicorn_config"]


def _refusal(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


def header_timeout_protocol(seconds: float, max_head: int = 16 * 1024) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol that closes a connection whose request head is incomplete after ``seconds``
    and answers 431 to a head (request line and headers) longer than ``max_head`` bytes. (h11's own
    limit only applies to a head still incomplete after a read, and a read takes up to 256 kB.)"""

    class HeaderTimeoutH11(H11Protocol):
        header_timeout, max_head_bytes = seconds, max_head

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._head_timer: asyncio.TimerHandle | None = None
            self._head_len, self._head_tail = 0, b""  # bytes of the request head so far, its last 3 bytes
            self._arm()

        def _head_too_long(self, data: bytes) -> bool:
            """Count the head while it arrives (``data`` came while no head was complete); True once it is
            longer than allowed. The blank line that ends it may straddle two reads: the last 3 bytes are kept."""
            buf = self._head_tail + data
            end = buf.find(b"\r\n\r\n")
            before = self._head_len - len(self._head_tail)  # head bytes before ``buf``
            if end < 0:
                self._head_len += len(data)
                self._head_tail = buf[-3:]
                return self._head_len > self.max_head_bytes
            self._head_len, self._head_tail = 0, b""  # complete: the next request's head starts afresh
            return before + end + 4 > self.max_head_bytes

        def _arm(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self.header_timeout, self._head_late)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_late(self) -> None:
            self._head_timer = None
            # still waiting for (the rest of) a request head: drop the connection, as a server with a
            # header timeout does; a request being answered is not touched (their_state moved on)
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self.conn.their_state is h11.IDLE and self._head_too_long(data):
                self._disarm()
                if not self.transport.is_closing():
                    self.transport.write(_refusal(431, "Request Header Fields Too Large",
                                                  f"request line and headers exceed {self.max_head_bytes} bytes"))
                    self.transport.close()
                return
            super().data_received(data)
            # IDLE: the head is not complete yet (the first bytes of a request, or of the next one on a
            # kept-alive connection): the clock runs from its first byte; otherwise the head is in
            if self.conn.their_state is h11.IDLE:
                self._arm()
            else:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._disarm()  # the keep-alive timer watches the idle connection now

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderTimeoutH11


def uvicorn_config(app: Any, host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "info",
                   config: ServeConfig | None = None) -> uvicorn.Config:
    """uvicorn's settings for ``app`` from its :class:`ServeConfig` (``app.state.config`` unless given)."""
    cfg = config or getattr(getattr(app, "state", None), "config", None) or ServeConfig()
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, lifespan="on", server_header=False,
        http=header_timeout_protocol(cfg.header_timeout_s, cfg.max_header_bytes),
        timeout_keep_alive=cfg.keep_alive_s,  # type: ignore[arg-type]  (a float works: call_later)
        h11_max_incomplete_event_size=cfg.max_header_bytes,
        limit_concurrency=cfg.max_connections,
        timeout_graceful_shutdown=cfg.shutdown_timeout_s)  # type: ignore[arg-type]


def run_server(app: Any, host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "info") -> None:
    """Serve ``app`` until interrupted (Ctrl-C / SIGTERM stop it gracefully, within ``shutdown_timeout_s``)."""
    try:
        uvicorn.Server(uvicorn_config(app, host, port, log_level=log_level)).run()
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} ({exc})") from None


class BackgroundServer:
    """``with BackgroundServer(app) as server:`` serves ``app`` on a free 127.0.0.1 port in a thread,
    waits for ``/healthz`` (``start_timeout`` seconds) and always shuts it down; ``server.url`` is the base."""

    def __init__(self, app: Any, *, start_timeout: float = 60.0) -> None:
        self.app, self.start_timeout = app, start_timeout
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))  # the kernel picks the port: no race with other servers
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = uvicorn_config(app, "127.0.0.1", self.port, log_level="warning")
        self._server = uvicorn.Server(self.config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True,
                                        name="irstd-serve")

    def _ready(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/readyz")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def __enter__(self) -> "BackgroundServer":
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self._ready():
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"server did not become ready on {self.url} within {self.start_timeout:g} s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._sock.close()
