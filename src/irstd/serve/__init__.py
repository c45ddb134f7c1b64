"""The HTTP service behind ``irstd serve`` (needs the ``serve`` extra: ``pip install sgem-irstd[serve]``).

:func:`create_app` builds the FastAPI application around one :class:`~irstd.inference.Predictor`;
:class:`MicroBatcher` gathers concurrent frames into model calls; :func:`run_server` serves an app with
uvicorn and :class:`BackgroundServer` runs one on a free loopback port (tests, benchmarks).
"""

from .app import ApiError, create_app, model_card
from .batcher import Job, JobResult, MicroBatcher, QueueFullError
from .config import ServeConfig
from .server import BackgroundServer, run_server, uvicorn_config

__all__ = ["ApiError", "BackgroundServer", "Job", "JobResult", "MicroBatcher", "QueueFullError", "ServeConfig",
           "create_app", "model_card", "run_server", "uvicorn_config"]
