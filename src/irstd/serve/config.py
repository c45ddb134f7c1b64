"""The service's settings: batching, limits and access, one dataclass shared by the CLI and tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.errors import ConfigError

__all__ = ["ServeConfig"]


@dataclass
class ServeConfig:
    """How ``irstd serve`` batches and what it accepts (defaults are the CLI's defaults).

    Micro-batching: requests that arrive while the model is busy, or within ``max_wait_ms`` of the
    first one, are run together, up to ``max_batch`` frames; ``max_batch=1`` serves one frame at a time.
    """

    max_batch: int = 16  #: frames per model call
    max_wait_ms: float = 2.0  #: how long the first frame of a batch waits for company
    max_queue: int = 64  #: frames waiting for the model; beyond this a request gets 503 + Retry-After
    max_body_bytes: int = 32 * 1024 * 1024  #: request body limit (413)
    max_pixels: int = 4096 * 4096  #: per-frame pixel limit, read from the header before decoding (413)
    max_batch_frames: int = 64  #: frames in one /v1/detect/batch request (413)
    timeout_s: float = 30.0  #: per-request limit from arrival to answer (504)
    threshold: float = 0.5  #: default probability threshold (a request may give its own)
    api_key: str | None = None  #: when set, /v1/* and /metrics need it (X-API-Key or Bearer)
    cors_origins: list[str] = field(default_factory=list)  #: CORS is off unless origins are given
    retry_after_s: int = 1  #: the Retry-After header of a 503
    threads: int | None = None  #: torch intra-op threads of the model thread (None: torch's default)
    worker_nice: int = 10  #: lower the model thread's OS priority by this much (0..19; 0: as the server)
    decode_threads: int | None = None  #: frames decoded at once (None: one per core)
    freeze_gc: bool = True  #: after warm-up, exempt what is loaded from full GC passes (gc.freeze): no GC stalls
    # memory: what a request may ask and what all requests in flight may hold (serve/budget.py estimates it)
    max_request_pixels: int = 4096 * 4096  #: pixels of all frames of one request, from their headers (413)
    max_inflight_mb: float | None = None  #: estimated memory of all requests in flight (503); None: half the
    #: memory available at start-up
    # connections (uvicorn's settings and the service's own header timeout, serve/server.py)
    header_timeout_s: float = 10.0  #: a connection must send a complete request head within this (closed)
    body_timeout_s: float = 20.0  #: a request must deliver its whole body within this (408)
    keep_alive_s: float = 5.0  #: an idle keep-alive connection is closed after this
    max_header_bytes: int = 16 * 1024  #: request line and headers together (431 beyond)
    max_connections: int = 512  #: connections and requests at once; beyond, uvicorn answers 503
    shutdown_timeout_s: float = 5.0  #: on Ctrl-C/SIGTERM, requests still running after this are cancelled

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_queue", "max_body_bytes", "max_pixels", "max_batch_frames", "retry_after_s",
                     "max_request_pixels", "max_header_bytes", "max_connections"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0 or self.timeout_s <= 0:
            raise ConfigError(f"max_wait_ms must be >= 0 and timeout_s > 0, got {self.max_wait_ms}, {self.timeout_s}")
        for name in ("threads", "decode_threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("header_timeout_s", "body_timeout_s", "keep_alive_s", "shutdown_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.max_inflight_mb is not None and self.max_inflight_mb <= 0:
            raise ConfigError(f"max_inflight_mb must be > 0, got {self.max_inflight_mb}")
        if not 0 <= self.worker_nice <= 19:
            raise ConfigError(f"worker_nice must be in 0..19, got {self.worker_nice}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.api_key is not None and not self.api_key:
            raise ConfigError("api_key is empty: give a key or none")
