"""Serving an app with uvicorn: in the foreground (the CLI) or on a background thread (tests, benchmarks)."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from typing import Any

import uvicorn

from ..core.errors import ConfigError

__all__ = ["BackgroundServer", "run_server"]


def run_server(app: Any, host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "info") -> None:
    """Serve ``app`` until interrupted (Ctrl-C / SIGTERM stop it gracefully)."""
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5,
                    server_header=False)
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
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
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
