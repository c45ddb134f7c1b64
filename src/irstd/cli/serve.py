"""``irstd serve``: the HTTP service and its browser page for one model (docs/serve.md)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import stat
from pathlib import Path

from ..core.amp import AMP_CHOICES
from ..core.memory import SERVE_KERNEL_CACHE
from ..core.errors import ConfigError
from ..inference.precisions import RUN_PRECISIONS
from ._common import add_device, add_verify, positive_int, probability, ranged, verifier_of

log = logging.getLogger(__name__)

#: the environment variable read when --api-key is not given
API_KEY_ENV = "IRSTD_API_KEY"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a .safetensors checkpoint, an .onnx file of irstd export (ONNX Runtime; int8 too), "
                                     "shipped weights by name (irstd models --pretrained) or a classical detector name")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=ranged(int, 0, 65535), default=8000, help="TCP port, 0-65535 (default 8000)")
    add_device(p)
    add_verify(p)
    # a service runs the device's fast mode by default (every other command defaults to fp32)
    p.add_argument("--precision", default="fast", choices=RUN_PRECISIONS,
                   help="fast (default: the device's fast mode, docs/speed.md) or fp32")
    p.add_argument("--amp", choices=AMP_CHOICES, help="dtype of the fast mode (default: the device's best)")
    p.add_argument("--threshold", type=probability, default=0.5, help="default probability threshold, 0 < t < 1 (default 0.5; a request may give its own)")
    p.add_argument("--max-batch", type=positive_int, default=16, help="frames per model call; 1 turns micro-batching off")
    p.add_argument("--max-wait-ms", type=ranged(float, 0), default=2.0, help="how long a batch waits for more frames, >= 0 (default 2)")
    p.add_argument("--max-queue", type=positive_int, default=64, help="frames waiting before 503 (default 64)")
    p.add_argument("--max-body-mb", type=ranged(float, 0, open_low=True), default=32.0, help="request body limit in MB, > 0 (default 32)")
    p.add_argument("--max-pixels", type=positive_int, default=4096 * 4096, help="pixels per frame (default 4096x4096)")
    p.add_argument("--timeout", type=ranged(float, 0, open_low=True), default=30.0, help="seconds per request, > 0 (default 30)")
    p.add_argument("--max-request-pixels", type=positive_int, default=4096 * 4096,
                   help="pixels of all frames of one request, read from their headers before decoding, >= 1 "
                        "(default 4096x4096; above: 413)")
    p.add_argument("--max-inflight-mb", type=ranged(float, 0, open_low=True), default=None,
                   help="estimated memory of all requests in flight in MB, > 0 (default: half the memory available "
                        "at start-up; a request that does not fit now: 503 + Retry-After, one that never can: 413)")
    p.add_argument("--header-timeout", type=ranged(float, 0, open_low=True), default=10.0,
                   help="seconds a connection has to send its request line and headers, > 0 (default 10; then closed)")
    p.add_argument("--body-timeout", type=ranged(float, 0, open_low=True), default=20.0,
                   help="seconds a request has to send its whole body, > 0 (default 20; then 408)")
    p.add_argument("--keep-alive", type=ranged(float, 0, open_low=True), default=5.0,
                   help="seconds an idle kept-alive connection stays open, > 0 (default 5)")
    p.add_argument("--max-header-kb", type=ranged(int, 1, 1024), default=16,
                   help="request line and headers in KB, 1-1024 (default 16; above: 431)")
    p.add_argument("--max-connections", type=ranged(int, 1, 100000), default=512,
                   help="connections and requests at once, 1-100000 (default 512; above: 503)")
    p.add_argument("--shutdown-timeout", type=ranged(float, 0, open_low=True), default=5.0,
                   help="seconds requests may finish after Ctrl-C/SIGTERM before they are cancelled, > 0 (default 5)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads of the model, >= 1 (default: torch's, one per core; cores - 1 on a machine shared "
                        "with other CPU work, docs/serve.md)")
    p.add_argument("--worker-nice", type=ranged(int, 0, 19), default=10,
                   help="lower the model thread's OS priority by this much, 0..19 (default 10: health checks "
                        "and request handling win the CPU; docs/serve.md)")
    p.add_argument("--decode-threads", type=positive_int, default=None,
                   help="frames decoded at once, >= 1 (default: one per core)")
    p.add_argument("--kernel-cache", type=ranged(int, 0, 1 << 20), default=None, metavar="N",
                   help="compiled kernels oneDNN keeps, one per layer and input shape, >= 0 (default: "
                        f"$ONEDNN_PRIMITIVE_CACHE_CAPACITY if set, else {SERVE_KERNEL_CACHE}: every batch size of one "
                        "frame size; 0: each call compiles its kernels; docs/serve.md)")
    p.add_argument("--no-freeze-gc", dest="freeze_gc", action="store_false",
                   help="let full garbage collections walk the loaded model and libraries (by default they are "
                        "frozen after warm-up, so a collection cannot stall health checks; docs/serve.md)")
    key = p.add_mutually_exclusive_group()
    key.add_argument("--api-key-file", metavar="FILE",
                     help=f"require the key in FILE (its first line; X-API-Key or Bearer); default ${API_KEY_ENV} if set")
    key.add_argument("--api-key", help="require this key; visible to every user in `ps`: prefer --api-key-file "
                                       f"or ${API_KEY_ENV}")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser calls from ORIGIN (repeatable; CORS is off by default)")
    # unlike detect/evaluate/bench, the service does not keep freed memory for reuse (retains_memory): it
    # faces frames of any size from anyone and must come back to its footprint after a burst, and the
    # idle trim of a retained multi-GB heap stalled /healthz for 0.7-0.9 s (docs/serve.md, "Memory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.memory import SHAPE_CACHE_ENV, bound_shape_caches, single_malloc_arena
    from ..inference import Predictor

    # before any other thread starts: after a burst of large frames the service hands memory back to the
    # system when idle (malloc_trim), which only reaches the whole heap with one arena (docs/serve.md)
    single_malloc_arena()
    # before the first convolution: frames of every size and batch size would fill torch's per-shape kernel
    # caches, which keep their memory after the traffic is gone (docs/serve.md, "Memory")
    # (--kernel-cache given: it wins over the environment; not given: the environment, which may set it for
    # every torch process of a deployment, else the service's bound)
    if args.kernel_cache is not None:
        os.environ[SHAPE_CACHE_ENV["onednn"]] = str(args.kernel_cache)
    bound_shape_caches(onednn=SERVE_KERNEL_CACHE)

    try:
        from ..serve import ServeConfig, create_app, run_server
    except ImportError as exc:
        raise ConfigError(f"irstd serve needs the serve extra: pip install 'sgem-irstd[serve]' ({exc})") from None
    api_key = resolve_api_key(args)
    config = ServeConfig(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
                         max_body_bytes=int(args.max_body_mb * 1024 * 1024), max_pixels=args.max_pixels,
                         timeout_s=args.timeout, threshold=args.threshold, api_key=api_key,
                         cors_origins=args.cors_origin, threads=args.threads, worker_nice=args.worker_nice,
                         decode_threads=args.decode_threads, freeze_gc=args.freeze_gc,
                         max_request_pixels=args.max_request_pixels, max_inflight_mb=args.max_inflight_mb,
                         header_timeout_s=args.header_timeout, body_timeout_s=args.body_timeout,
                         keep_alive_s=args.keep_alive, max_header_bytes=args.max_header_kb * 1024,
                         max_connections=args.max_connections, shutdown_timeout_s=args.shutdown_timeout)
    predictor = Predictor.from_checkpoint(args.checkpoint, device=args.device, threshold=args.threshold,
                                          precision=args.precision, amp=None if args.precision == "fp32" else args.amp,
                                          batch_size=args.max_batch, verifier=verifier_of(args),
                                          pow2_batches=True)  # at most 5 batch sizes for the kernel cache
    try:
        public = not ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        public = args.host != "localhost"
    if public and api_key is None:
        log.warning("listening on %s without an API key: anyone who reaches it can use it", args.host)
    print(f"serving {args.checkpoint} ({predictor.label()}) on http://{args.host}:{args.port}/ "
          f"(API docs at /docs); Ctrl-C stops")
    run_server(create_app(predictor, config, name=str(args.checkpoint)), args.host, args.port)
    return 0


def resolve_api_key(args: argparse.Namespace) -> str | None:
    """The service's key: ``--api-key-file`` (its first line), else ``--api-key``, else ``$IRSTD_API_KEY``;
    None when none is given. An unreadable or empty file is a :class:`ConfigError` naming it."""
    if args.api_key_file:
        path = Path(args.api_key_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
            mode = stat.S_IMODE(path.stat().st_mode)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--api-key-file {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
        key = lines[0].strip() if lines else ""
        if not key:
            raise ConfigError(f"--api-key-file {path}: the first line is empty (write the key there)")
        if mode & 0o077:
            log.warning("%s holds the API key and other users can read it (mode %o): chmod 600 it", path, mode)
        return key
    return args.api_key or os.environ.get(API_KEY_ENV) or None
