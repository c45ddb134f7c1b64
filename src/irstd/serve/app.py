"""The HTTP service: FastAPI routes over one predictor and one micro-batcher.

Routes: ``POST /v1/detect`` (one frame: multipart file or raw body), ``POST /v1/detect/batch``
(multipart, several files), ``GET /v1/models``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics``,
the page at ``/`` and OpenAPI at ``/docs``. Every error answers ``{"error": "<one line>"}``.

The parts: :mod:`.state` (what a running service holds, start-up and shut-down), :mod:`.routes`
(routes and error handlers), :mod:`.requests` (request decoding and refusals).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from ..core.version import __version__
from ..inference import Predictor
from .config import ServeConfig
from .requests import ApiError
from .routes import ROUTES, STATIC, add_detect_routes, add_error_handlers, add_info_routes, model_card
from .state import ServiceState
from .telemetry import Telemetry

__all__ = ["ApiError", "create_app", "model_card"]


class _Metrics:
    """Pure ASGI middleware: request count and latency by route (unknown paths count as ``other``)."""

    def __init__(self, app: Any, telemetry: Telemetry) -> None:
        self.app, self.telemetry = app, telemetry

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        route = path if path in ROUTES else ("/static" if path.startswith("/static/") else "other")
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


def create_app(predictor: Predictor, config: ServeConfig | None = None, *, name: str = "model") -> FastAPI:
    """The service for ``predictor`` (loaded once, run by one worker thread); ``name`` is how the user
    named the model (checkpoint path or detector name), reported as ``checkpoint`` in every answer."""
    cfg = config or ServeConfig()
    state = ServiceState(predictor, cfg, name)
    app = FastAPI(title="irstd", version=__version__, lifespan=state.lifespan,
                  description="Infrared small target detection. Answers use the `irstd detect` JSON schema.")
    app.state.batcher, app.state.telemetry, app.state.config = state.batcher, state.telemetry, cfg
    app.state.budget = state.budget
    add_error_handlers(app, state)
    add_detect_routes(app, state)
    add_info_routes(app, state)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if cfg.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=cfg.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["*"])
    app.add_middleware(_Metrics, telemetry=state.telemetry)
    return app
