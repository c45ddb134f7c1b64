"""Run a sweep: train (or resume) every cell, evaluate its checkpoints on the test list, time every model.

Every run is an ordinary run folder (:func:`irstd.engine.fit`), evaluated at native resolution by
:func:`irstd.engine.evaluate_checkpoint`; evaluations are written beside the checkpoints
(``eval-<test list>-<checkpoint>/metrics.json``) and reused while newer than their checkpoint. A failed
cell (bad config, unknown model, an error while training) is recorded and the others go on.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from ..bench import run_benchmark
from ..core.device import resolve_device
from ..core.errors import IRSTDError, first_line
from ..core.files import atomic_write_text
from ..engine import evaluate_checkpoint, fit
from ..engine.resume import read_state
from ..engine.run_folder import RunFolder
from .spec import CHECKPOINTS, RunSpec, SweepSpec, run_status

__all__ = ["RunOutcome", "run_sweep", "evaluate_run", "bench_models"]

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    """What happened to one cell."""

    name: str
    label: str
    model: str
    seed: int
    status: str  # finished | failed | unfinished | conflict
    detail: str = ""
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # checkpoint → SegResult dict
    best_epoch: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _test_tag(spec: SweepSpec) -> str:
    split_file = spec.test.get("split_file")
    return Path(split_file).stem if split_file else str(spec.test.get("split", "test"))


def evaluate_run(spec: SweepSpec, run_dir: Path, device: str = "auto") -> dict[str, dict[str, Any]]:
    """Metrics of every checkpoint the run folder holds (best, last, ema), evaluating those not yet done."""
    out, run = {}, RunFolder(run_dir)
    for kind in CHECKPOINTS:
        ckpt = run.checkpoint(kind)
        if not ckpt.is_file():
            continue
        folder = run.eval_dir(f"{_test_tag(spec)}-{kind}")
        metrics_file = folder / "metrics.json"
        if not metrics_file.is_file() or metrics_file.stat().st_mtime < ckpt.stat().st_mtime:
            test = {k: v for k, v in spec.test.items() if k in ("split", "split_file", "mask_dir", "skip_invalid", "synthetic_n")}
            report = evaluate_checkpoint(ckpt, spec.test.get("data"), device=device, **test)
            report.save(folder)
            log.info("%s %s: test IoU %.2f", run_dir.name, kind, 100 * report.result.iou)
        out[kind] = json.loads(metrics_file.read_text())["metrics"]
    return out


def _best_epoch(run_dir: Path) -> int | None:
    folder = RunFolder(run_dir)
    if not folder.state.is_file():
        return None
    return read_state(folder)["best"].get("epoch")


def _run_cell(spec: SweepSpec, run: RunSpec, train: bool, device: str) -> RunOutcome:
    """Train or resume ``run`` (when ``train``), then evaluate it; errors become a failed outcome."""
    outcome = RunOutcome(run.name, run.label, run.model, run.seed, "unfinished")
    try:
        status, detail = run_status(run)
        if status == "conflict":
            outcome.status, outcome.detail = "conflict", detail
            return outcome
        if status != "finished":
            if not train:
                outcome.detail = detail or "not started"
                return outcome
            log.info("%s: %s", run.name, "resuming, " + detail if status == "partial" else "training")
            fit(run.cfg, resume=run.run_dir if status == "partial" else None)
        outcome.metrics = evaluate_run(spec, run.run_dir, device)
        outcome.best_epoch = _best_epoch(run.run_dir)
        outcome.status, outcome.detail = "finished", f"{run.cfg.epochs} epochs"
    except (IRSTDError, RuntimeError, ValueError, KeyError, OSError, FloatingPointError) as exc:
        outcome.status = "failed"
        outcome.detail = f"{type(exc).__name__}: {first_line(exc)}"[:300]
        log.error("%s failed: %s", run.name, outcome.detail)
        log.debug("%s", traceback.format_exc())
    return outcome


def _worker(spec: SweepSpec, run: RunSpec, train: bool, device: str, threads: int | None) -> RunOutcome:
    """Entry point of a worker process (spawned: a fresh interpreter per run)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(processName)s %(name)s: %(message)s")
    if threads:
        torch.set_num_threads(threads)
    return _run_cell(spec, run, train, device)


def run_sweep(spec: SweepSpec, *, parallel: int = 1, train: bool = True, device: str = "auto",
              threads: int | None = None, runtime: dict[str, Any] | None = None) -> list[RunOutcome]:
    """Every cell of ``spec`` (train, resume, evaluate), ``parallel`` at a time; returns their outcomes in grid order.

    With ``parallel`` > 1 each run is its own process; on the CPU the cores are split between them
    (``threads`` each, default cores ÷ parallel). ``train=False`` only evaluates finished runs.
    ``runtime``: runtime config keys for every run (e.g. ``progress``).
    """
    keys = dict(runtime or {})
    dev = resolve_device(device if device != "auto" else keys.get("device", "auto"))
    if parallel > 1 and dev.type == "cpu" and threads is None:
        threads = max(1, (os.cpu_count() or 1) // parallel)
    if threads:
        keys["threads"] = threads
    if device != "auto":
        keys["device"] = device
    cells = spec.runs(keys)
    outcomes: dict[int, RunOutcome] = {}
    jobs = []
    for i, cell in enumerate(cells):
        if isinstance(cell, tuple):
            model, seed, variant, error = cell
            label = f"{model}-{variant}" if variant else model
            outcomes[i] = RunOutcome(f"{label}-seed{seed}", label, model, seed, "failed", error)
        else:
            jobs.append((i, cell))
    if parallel <= 1:
        for i, run in jobs:
            outcomes[i] = _run_cell(spec, run, train, device)
    else:
        with ProcessPoolExecutor(max_workers=parallel, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_worker, spec, run, train, device, threads): (i, run) for i, run in jobs}
            try:
                for future in as_completed(futures):
                    i, run = futures[future]
                    try:
                        outcomes[i] = future.result()
                    except Exception as exc:  # noqa: BLE001 — a worker that died (e.g. out of memory) fails its cell only
                        outcomes[i] = RunOutcome(run.name, run.label, run.model, run.seed, "failed",
                                                 f"{type(exc).__name__}: {exc}"[:300])
            except KeyboardInterrupt:
                _stop_workers(pool)
                raise
    return [outcomes[i] for i in range(len(cells))]


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Interrupt the running cells and drop the queued ones, then wait for the workers to exit.

    A SIGINT sent to this process alone (``kill -INT``, a supervisor, ``timeout --foreground``) does not
    reach the workers, and leaving the pool would wait for whole runs: pass it on, so that each run stops
    with its last finished epoch on disk (every file is replaced atomically) and resumes from there.
    """
    log.warning("interrupted: stopping %d running cell(s); they resume from their last finished epoch",
                len(multiprocessing.active_children()))
    for child in multiprocessing.active_children():
        try:
            os.kill(child.pid, signal.SIGINT)
        except (ProcessLookupError, TypeError):  # already gone, or not started
            pass
    pool.shutdown(wait=True, cancel_futures=True)


def bench_models(spec: SweepSpec, models: list[str], device: str = "auto", refresh: bool = False) -> dict[str, Any]:
    """Params, MACs and FPS (batch 1, fp32, ``bench.size``²) of every model from :func:`irstd.bench.run_benchmark`,
    cached in ``<sweep folder>/bench.json`` with the machine it was measured on."""
    path = spec.folder / "bench.json"
    cache: dict[str, Any] = json.loads(path.read_text()) if path.is_file() and not refresh else {"models": {}}
    if not spec.bench:
        return cache
    size = int(spec.bench.get("size", 256))
    for model in models:
        if model in cache["models"]:
            continue
        try:
            report = run_benchmark([model], modes=("fp32",), sizes=((size, size),), batches=(1,), device=device,
                                   runs=int(spec.bench.get("runs", 30)), warmup=int(spec.bench.get("warmup", 5)),
                                   conv_rate=False)
        except (IRSTDError, RuntimeError, ValueError) as exc:
            cache["models"][model] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            continue
        info, row = report["models"][model], report["results"][0]
        cache["environment"] = {k: report["environment"].get(k) for k in ("device", "device_name", "cpu_name", "torch", "threads")
                                if k in report["environment"]}
        cache["models"][model] = {"params": info["params"], "macs": row.get("macs_per_image"), "fps": row.get("fps"),
                                  "size": size, "error": row.get("error")}
    spec.folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(cache, indent=1))
    return cache
