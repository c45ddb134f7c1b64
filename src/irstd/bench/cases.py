"""Cases (model, mode, batch, size): building their runners, timing them, and the report."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from ..core.device import cudnn_benchmark, resolve_device
from ..core.errors import ConfigError, IRSTDError, first_line
from ..core.padding import padded_size
from ..core.profiling import count_macs_at as _count_macs_of, count_macs_meta, count_params
from ..export import export_onnx
from ..export.quantize import CalibrationSpec, calibration_frames, quantize_onnx
from ..inference import ModelRunner, OnnxRunner, resolve_mode
from .modes import MODES
from ..models import create_model, get_model_entry, list_models
from ..models.paper_figures import SEED, published_for, reference_for
from .timing import environment, peak_memory_mb, time_calls, time_interleaved, timing_stats

__all__ = ["SCHEMA", "MODES", "published_figures", "Case", "count_macs_at", "conv_rate_case", "run_cases", "run_benchmark"]

log = logging.getLogger(__name__)

SCHEMA = "irstd-bench/1"
#: calibration frames of the int8 mode when no calibration set is given: N(0, 1) inputs of this (H, W),
#: enough for timing (the figures of record calibrate on training frames: docs/int8.md)
BENCH_CALIB_FRAMES, BENCH_CALIB_SIZE = 4, (256, 256)

def published_figures(name: str) -> dict[str, float | None | str] | None:
    """The figures the Table 1 view prints beside a model: the seed paper's Table 1 where it has the model,
    else the published set describing the default configuration (from :mod:`irstd.models._published`)."""
    entries = published_for(name)
    chosen = next((p for p in entries if p.source == SEED), None) or reference_for(name)
    if chosen is None:
        return None
    return {"params_m": chosen.params_m, "gflops": chosen.gmacs, "fps": chosen.fps,
            "source": f"{chosen.source} ({chosen.config})" if chosen.config else chosen.source}


@dataclass(frozen=True)
class Case:
    """One configuration to time. ``height``/``width`` are rounded up to the model's stride when run."""

    model: str
    mode: str
    batch: int = 1
    height: int = 256
    width: int = 256

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.batch < 1 or self.height < 1 or self.width < 1:
            raise ConfigError(f"batch and size must be positive, got {self}")

    @property
    def key(self) -> str:
        return f"{self.model}/{self.mode}/b{self.batch}/{self.width}x{self.height}"



def count_macs_at(model_name: str, height: int, width: int, model: nn.Module | None = None) -> tuple[int, bool]:
    """(MACs of one image of H×W, exact?) for a registered model (see :func:`irstd.core.profiling.count_macs_at`).

    The network is built on the meta device (no weights are initialised) unless ``model`` is given.
    """
    if model is None:
        try:
            with torch.device("meta"):
                meta_model = create_model(model_name).eval()
            macs = count_macs_meta(meta_model, (1, int(getattr(meta_model, "in_chans", 1)), height, width))
            if macs is not None:
                return macs, True
        except (NotImplementedError, RuntimeError, TypeError, ValueError) as exc:
            log.debug("%s: cannot be built on the meta device (%s)", model_name, exc)
        return _count_macs_of(create_model(model_name), height, width, try_meta=False)  # needs real weights
    return _count_macs_of(model, height, width)


def count_runner_macs(model: nn.Module, height: int, width: int) -> int | None:
    """MACs of one H×W image through ``model`` as a runner holds it (for the fast mode: after its exact
    rewrites, which can remove work), counted on a meta-device copy; None when it cannot be traced there."""
    return count_macs_meta(model, (1, int(getattr(model, "in_chans", 1)), height, width))


def conv_rate_case(device: torch.device, dtype: torch.dtype | None) -> tuple[Callable[[], Any], int, dict[str, Any]]:
    """(callable, FLOPs per call, description) of a large 3×3 convolution run like the fast mode
    (channels-last, autocast to ``dtype``): the machine's attainable convolution rate."""
    b, c, s = (8, 256, 128) if device.type == "cuda" else (1, 128, 128)
    dt = dtype or torch.float32
    # weights and input already in the compute dtype and layout, as activations inside a network are:
    # the timing holds the convolution kernel alone, no casts or layout changes
    conv = nn.Conv2d(c, c, 3, padding=1, bias=False).eval().requires_grad_(False)
    conv = conv.to(device=device, dtype=dt, memory_format=torch.channels_last)
    x = torch.randn(b, c, s, s, device=device).to(dtype=dt, memory_format=torch.channels_last)

    def call() -> torch.Tensor:
        with torch.inference_mode(), cudnn_benchmark(device, device.type == "cuda"):
            return conv(x)

    flops = 2 * b * c * c * 9 * s * s
    desc = {"shape": [b, c, s, s], "kernel": 3, "out_channels": c, "dtype": str(dt).replace("torch.", "")}
    return call, flops, desc


class _ModelSlot:
    """A built model and its runners per mode (the fast copy is made once per model)."""

    def __init__(self, name: str, device: torch.device, amp: str | None, cuda_graphs: bool, seed: int,
                 calib: CalibrationSpec | None = None) -> None:
        torch.manual_seed(seed)
        self.calib, self.seed = calib, seed
        self.name, self.device = name, device
        self.model = create_model(name).eval()
        self.amp, self.cuda_graphs = amp, cuda_graphs
        self.runners: dict[str, Any] = {}
        self.modes: dict[str, dict[str, Any]] = {}
        self._tmp: tempfile.TemporaryDirectory | None = None

    def runner(self, mode: str):
        if mode not in self.runners:
            if mode in ("onnx", "int8"):
                runner = self._onnx_runner(int8=mode == "int8")
                self.modes[mode] = {"precision": mode, "label": runner.label(),
                                    **({"calibration": runner.metadata.get("calibration")} if mode == "int8" else {})}
            else:
                run_mode = resolve_mode(mode, self.device, amp=self.amp, cuda_graphs=self.cuda_graphs)
                runner = ModelRunner(self.model, self.device, run_mode)
                self.modes[mode] = {**run_mode.as_dict(), "label": run_mode.label()}
            self.runners[mode] = runner
        return self.runners[mode]

    def _onnx_runner(self, int8: bool = False) -> OnnxRunner:
        if self.device.type != "cpu":
            raise ConfigError("onnx and int8 modes run ONNX Runtime on the CPU; use --device cpu")
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="irstd-bench-")
        fp32 = Path(self._tmp.name) / f"{self.name}.onnx"
        if not fp32.is_file():
            export_onnx(self.model, fp32)
        if not int8:
            return OnnxRunner(fp32)
        stride = int(getattr(self.model, "stride", 1))
        if self.calib is not None:
            frames = calibration_frames(self.calib, getattr(self.model, "normalization", None), stride)
            desc: dict[str, Any] = self.calib.describe()
        else:
            gen = torch.Generator().manual_seed(self.seed)
            h, w = padded_size(*BENCH_CALIB_SIZE, stride)
            frames = [torch.randn(1, int(getattr(self.model, "in_chans", 1)), h, w, generator=gen).numpy()
                      for _ in range(BENCH_CALIB_FRAMES)]
            desc = {"data": "N(0, 1) inputs (timing only)", "frames": BENCH_CALIB_FRAMES, "size": [h, w]}
        return OnnxRunner(quantize_onnx(fp32, Path(self._tmp.name) / f"{self.name}.int8.onnx", frames,
                                        calibration=desc))

    def close(self) -> None:
        self.runners.clear()
        if self._tmp is not None:
            self._tmp.cleanup()


def _case_fn(slot: _ModelSlot, case: Case, seed: int) -> tuple[Callable[[], Any], tuple[int, int]]:
    runner = slot.runner(case.mode)
    h, w = padded_size(case.height, case.width, int(getattr(slot.model, "stride", 1)))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(case.batch, int(getattr(slot.model, "in_chans", 1)), h, w, generator=gen).to(slot.device)
    return (lambda: runner(x)), (h, w)


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()


def run_cases(
    cases: Sequence[Case],
    *,
    device: str | torch.device = "auto",
    runs: int = 30,
    warmup: int = 5,
    amp: str | None = None,
    cuda_graphs: bool = True,
    budget_s: float | None = None,
    interleave: bool = False,
    settle: int = 1,
    conv_rate: bool = True,
    seed: int = 0,
    command: str | None = None,
    note: str = "",
    progress: Callable[[str], None] | None = None,
    calib: CalibrationSpec | None = None,
) -> dict[str, Any]:
    """Time every case and return the report (see :func:`run_benchmark` for the fields).

    ``calib``: calibration frames of the ``int8`` mode (default: N(0, 1) inputs, for timing only).

    Without ``interleave`` the cases run one after the other, a model's cases together (one model in
    memory at a time); with it, every case is built first and they are timed round-robin (no
    ``budget_s`` then; ``settle`` untimed calls of a case precede each of its timed calls, see
    :func:`~irstd.bench.timing.time_interleaved`). A case that fails (e.g. out of memory) gets an ``error`` entry instead of
    figures; the others still run. ``note`` is free text for the report's header (e.g. that the
    machine was shared).
    """
    if runs < 1 or warmup < 0 or settle < 0:
        raise ConfigError(f"runs must be >= 1, warmup and settle >= 0, got runs={runs}, warmup={warmup}, settle={settle}")
    device = resolve_device(device)
    say = progress or (lambda msg: log.info("%s", msg))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    report = _new_report(device, command=command, note=note, settings={
        "runs": runs, "warmup": warmup, "amp": amp, "cuda_graphs": cuda_graphs and device.type == "cuda",
        "budget_s": budget_s, "interleave": interleave, "settle": settle if interleave else None, "seed": seed})
    order = list(dict.fromkeys(c.model for c in cases))
    for name in order:
        get_model_entry(name)  # unknown names fail before any timing
    timer = _Timer(device, runs=runs, warmup=warmup, budget_s=budget_s, interleave=interleave, settle=settle, say=say)
    conv_flops = 0
    if conv_rate:
        conv_fn, conv_flops, report["conv_rate"] = conv_rate_case(device, resolve_mode("fast", device, amp=amp).amp_dtype)
        timer.add("__conv__", conv_fn, report["conv_rate"], "the 3x3 convolution rate")
    rows: dict[Case, dict[str, Any]] = {}
    slots: list[_ModelSlot] = []
    for name in order:
        slot = _ModelSlot(name, device, amp, cuda_graphs, seed, calib)
        report["models"][name] = info = _model_info(slot)
        for case in [c for c in cases if c.model == name]:
            rows[case] = _prepare_case(slot, case, info, seed, timer)
        if interleave:
            slots.append(slot)
        else:
            slot.close()  # one model in memory at a time
            if device.type == "cuda":
                torch.cuda.empty_cache()  # hand back this model's activations and CUDA-graph pools
    timer.run_interleaved()
    for slot in slots:
        slot.close()
    _derive_figures(report.get("conv_rate"), conv_flops, rows)
    report["results"] = [rows[c] for c in cases if c in rows]
    _finish_environment(report, wall0, cpu0)
    return report


def _new_report(device: torch.device, *, command: str | None, note: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The report's header: schema, time, command, machine and settings; models and results to come."""
    return {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "note": note,
        "environment": environment(device),
        "settings": settings,
        "conv_rate": None,
        "models": {},
        "results": [],
    }


class _Timer:
    """Times cases at once (one after another) or, with ``interleave``, collects them and times them
    round-robin in :meth:`run_interleaved`. Each case's figures land in the row dict given to :meth:`add`."""

    def __init__(self, device: torch.device, *, runs: int, warmup: int, budget_s: float | None, interleave: bool,
                 settle: int, say: Callable[[str], None]) -> None:
        self.device, self.runs, self.warmup, self.budget_s = device, runs, warmup, budget_s
        self.interleave, self.settle, self.say = interleave, settle, say
        self.pending: dict[str, tuple[Callable[[], Any], dict[str, Any]]] = {}

    def add(self, key: str, fn: Callable[[], Any], row: dict[str, Any], what: str | None = None) -> None:
        if self.interleave:
            self.pending[key] = (fn, row)
            return
        self.say(f"timing {what or key}")
        times = time_calls(fn, runs=self.runs, warmup=self.warmup, device=self.device,
                           budget_s=None if key == "__conv__" else self.budget_s)
        row.update(timing_stats(times))
        if key != "__conv__":
            row["truncated"] = row["n_runs"] < self.runs

    def run_interleaved(self) -> None:
        if not self.pending:
            return
        self.say(f"timing {len(self.pending)} cases interleaved, {self.runs} rounds")
        fns = {k: fn for k, (fn, _) in self.pending.items()}
        times = time_interleaved(fns, runs=self.runs, warmup=self.warmup, device=self.device, settle=self.settle)
        for key, (_, row) in self.pending.items():
            row.update(timing_stats(times[key]))
            if key != "__conv__":
                row["truncated"] = False
        self.pending.clear()


def _model_info(slot: "_ModelSlot") -> dict[str, Any]:
    """The report's entry for one model: params, paper, kind, stride, MACs per size (filled per case)."""
    entry = get_model_entry(slot.name)
    return {"params": count_params(slot.model), "paper": entry.paper, "kind": entry.kind,
            "stride": int(getattr(slot.model, "stride", 1)), "macs": {}, "macs_exact": {},
            "published": published_figures(slot.name), "modes": slot.modes}


def _prepare_case(slot: "_ModelSlot", case: Case, info: dict[str, Any], seed: int, timer: _Timer) -> dict[str, Any]:
    """Build one case, count its MACs and memory, and hand it to the timer; a failure becomes the row's ``error``."""
    row: dict[str, Any] = {**asdict(case), "error": None}
    try:
        fn, (h, w) = _case_fn(slot, case, seed)
        row.update(height=h, width=w, label=slot.modes[case.mode]["label"])
        size_key = f"{h}x{w}"
        if size_key not in info["macs"]:
            info["macs"][size_key], info["macs_exact"][size_key] = count_macs_at(slot.name, h, w, slot.model)
        row["macs_per_image"] = info["macs"][size_key]
        runner_model = getattr(slot.runners[case.mode], "model", None)
        if case.mode == "fast" and runner_model is not None and info["macs_exact"][size_key]:
            run_macs = count_runner_macs(runner_model, h, w)
            if run_macs is not None:
                row["macs_run_per_image"] = run_macs
        fn()  # first call: lazy initialisation, CUDA graph capture
        graphs = getattr(slot.runners[case.mode], "_graphs", None)
        if graphs is not None and graphs.failed:
            row["note"] = "CUDA graph capture failed: ran eagerly"
        row["peak_mem_mb"] = peak_memory_mb(fn, slot.device)
        timer.add(case.key, fn, row)
    except Exception as exc:  # noqa: BLE001 — record the failure, keep benchmarking the rest
        if not (_is_oom(exc) or isinstance(exc, (RuntimeError, IRSTDError, ValueError))):
            raise
        row["error"] = f"{type(exc).__name__}: {first_line(exc, 300)}"
        log.warning("%s failed: %s", case.key, row["error"])
        if slot.device.type == "cuda":
            torch.cuda.empty_cache()
    return row


def _derive_figures(conv: dict[str, Any] | None, conv_flops: int, rows: dict[Case, dict[str, Any]]) -> None:
    """FPS, ms per megapixel and the ratios to the floor (2·MACs ÷ the conv rate) of every timed case."""
    rate = rate_best = None
    if conv and "median_ms" in conv:
        conv["flops"] = conv_flops
        conv["gflops_median"] = conv_flops / conv["median_ms"] / 1e6
        conv["gflops_best"] = conv_flops / conv["min_ms"] / 1e6
        rate, rate_best = conv_flops / conv["median_ms"], conv_flops / conv["min_ms"]  # FLOP per ms
    for case, row in rows.items():
        if "median_ms" not in row:
            continue
        med = row["median_ms"]
        row["fps"] = 1e3 * case.batch / med
        row["ms_per_mpix"] = med / (case.batch * row["height"] * row["width"] / 1e6)
        if rate and row.get("macs_per_image"):
            # median ÷ floor at the conv's median rate (same conditions), and best ÷ floor at its best
            # rate (each at its least disturbed: the stricter reading on a shared machine)
            row["floor_ms"] = 2 * row["macs_per_image"] * case.batch / rate
            row["x_floor"] = med / row["floor_ms"]
            row["x_floor_best"] = row["min_ms"] / (2 * row["macs_per_image"] * case.batch / rate_best)
            if row.get("macs_run_per_image"):
                # the same against the MACs the fast mode actually executes (its rewrites remove work)
                row["x_floor_run"] = med / (2 * row["macs_run_per_image"] * case.batch / rate)


def _finish_environment(report: dict[str, Any], wall0: float, cpu0: float) -> None:
    """Load at the end, the CPU share the process obtained, and the total time."""
    env = report["environment"]
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    threads = max(torch.get_num_threads(), 1)
    env["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    # share of the thread-seconds the process got: well below 1 on a CPU shared with other work
    env["cpu_share"] = cpu / (wall * threads) if wall > 0 else None
    report["total_s"] = wall


#: what :func:`run_benchmark` covers by default: run modes, (H, W) sizes, batch sizes
DEFAULT_MODES: tuple[str, ...] = ("fp32", "fast")
DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((256, 256), (512, 640), (1024, 1280))
DEFAULT_BATCHES: tuple[int, ...] = (1, 8)


def run_benchmark(
    models: Sequence[str] | None = None,
    *,
    kind: str | None = None,
    modes: Sequence[str] = DEFAULT_MODES,
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    batches: Sequence[int] = DEFAULT_BATCHES,
    **kwargs: Any,
) -> dict[str, Any]:
    """Benchmark ``models`` (names or shell patterns; default: every registered model, or those of
    ``kind`` — ``learned`` or ``classical``) over every mode × batch × (H, W) and return the report.

    The report (JSON-serialisable, schema ``irstd-bench/1``) holds ``environment`` (device name,
    versions, threads, load), ``settings``, ``conv_rate`` (the floor's reference), ``models``
    (params, MACs per size, published figures, the run modes) and ``results``: one row per case with
    ``median_ms``, ``p10_ms``/``p90_ms``/``min_ms``/``max_ms``/``iqr_ms``, ``n_runs``, ``fps``,
    ``ms_per_mpix``, ``floor_ms``, ``x_floor`` (median ÷ floor at the conv's median rate),
    ``x_floor_best`` (min ÷ floor at the conv's best rate), ``peak_mem_mb``, or ``error``. ``kwargs`` go to
    :func:`run_cases`.
    """
    return run_cases(plan_cases(models, kind=kind, modes=modes, sizes=sizes, batches=batches), **kwargs)


def plan_cases(
    models: Sequence[str] | None = None,
    *,
    kind: str | None = None,
    modes: Sequence[str] = DEFAULT_MODES,
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    batches: Sequence[int] = DEFAULT_BATCHES,
) -> list[Case]:
    """The cases :func:`run_benchmark` runs, in order: model × mode × batch × (H, W) (known before any runs,
    so a caller can say how many)."""
    names: list[str] = []
    for spec in models or ["*"]:
        matched = list_models(spec, kind) if any(ch in spec for ch in "*?[") else [get_model_entry(spec).name]
        if not matched:
            raise ConfigError(f"no registered model matches {spec!r}")
        names += [n for n in matched if n not in names]
    return [Case(n, m, b, h, w) for n in names for m in modes for b in batches for (h, w) in sizes]

