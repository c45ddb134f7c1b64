"""Prometheus metrics of one app (its own registry, so several apps can live in one process)."""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST

__all__ = ["Telemetry", "CONTENT_TYPE_LATEST"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
_GC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Telemetry:
    """Requests, latency, batch sizes, errors and queue depth, exposed as Prometheus text."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("irstd_http_requests", "HTTP requests by route and status", ["route", "status"], registry=r)
        self.latency = Histogram("irstd_http_request_duration_seconds", "time from request to response",
                                 ["route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("irstd_batch_size", "frames per model call", buckets=_BATCH_BUCKETS, registry=r)
        self.inference = Histogram("irstd_inference_seconds", "model time per batch", buckets=_LATENCY_BUCKETS, registry=r)
        self.frames = Counter("irstd_frames", "frames run through the model", registry=r)
        self.errors = Counter("irstd_errors", "rejected or failed requests by reason", ["reason"], registry=r)
        self.queue_depth = Gauge("irstd_queue_depth", "frames waiting for the model", registry=r)
        self.dropped = Counter("irstd_frames_dropped", "queued frames dropped unrun: their request timed out "
                               "or its client left", registry=r)
        self.inflight_bytes = Gauge("irstd_inflight_bytes", "estimated memory held by the requests in flight",
                                    registry=r)
        # a collection holds the GIL: every thread (health checks included) waits for it
        self.gc_pause = Histogram("irstd_gc_pause_seconds", "garbage-collection pauses by generation",
                                  ["generation"], buckets=_GC_BUCKETS, registry=r)
        self.gc_longest = Gauge("irstd_gc_pause_longest_seconds", "longest garbage-collection pause so far",
                                registry=r)
        self._gc_by_generation = {g: self.gc_pause.labels(str(g)) for g in range(3)}  # no label lookup per pass
        self._gc_start = 0.0
        self.longest_gc_pause = 0.0  #: seconds of the longest collection timed so far

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        # collections never overlap (each holds the GIL), so one start time is enough
        if phase == "start":
            self._gc_start = time.perf_counter()
            return
        seconds = time.perf_counter() - self._gc_start
        generation = info.get("generation")
        child = self._gc_by_generation.get(generation) or self.gc_pause.labels(str(generation))
        child.observe(seconds)
        if seconds > self.longest_gc_pause:
            self.longest_gc_pause = seconds
            self.gc_longest.set(seconds)

    def watch_gc(self, on: bool = True) -> None:
        """Start (or stop) timing this process's garbage collections (``gc.callbacks``)."""
        if on and self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)
        elif not on and self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
