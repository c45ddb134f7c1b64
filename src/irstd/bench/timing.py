"""Timers, statistics, memory and machine facts of the benchmark."""

from __future__ import annotations

import math
import os
import platform
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ..core.device import cpu_supports_bf16
from ..core.memory import malloc_trim, memory_retained
from ..core.version import __version__

__all__ = ["timing_stats", "time_calls", "time_interleaved", "peak_memory_mb", "environment"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timing_stats(times_s: Sequence[float]) -> dict[str, float | int]:
    """Median, mean, min, max, 10th/90th percentiles and IQR in ms; ``spread_pct`` = (p90 − p10) / median."""
    if not times_s:
        raise ValueError("no timings")
    ms = np.asarray(times_s, dtype=np.float64) * 1e3
    p10, q1, med, q3, p90 = np.percentile(ms, [10, 25, 50, 75, 90])
    return {
        "n_runs": int(ms.size),
        "median_ms": float(med),
        "mean_ms": float(ms.mean()),
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
        "p10_ms": float(p10),
        "p90_ms": float(p90),
        "iqr_ms": float(q3 - q1),
        "spread_pct": float(100.0 * (p90 - p10) / med) if med > 0 else math.nan,
    }


def time_calls(
    fn: Callable[[], Any], *, runs: int = 30, warmup: int = 5, device: torch.device | None = None,
    budget_s: float | None = None, min_runs: int = 3,
) -> list[float]:
    """Seconds per call of ``fn`` over ``runs`` timed calls after ``warmup`` untimed ones.

    ``budget_s`` caps the time spent (warm-up included): timing stops once it is exceeded and
    ``min_runs`` calls were timed, so the result may hold fewer than ``runs`` entries.
    """
    device = device or torch.device("cpu")
    start = time.perf_counter()
    for i in range(warmup):
        fn()
        if budget_s is not None and time.perf_counter() - start > budget_s / 4:
            break
    _sync(device)
    times = []
    for _ in range(runs):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
        if budget_s is not None and len(times) >= min_runs and time.perf_counter() - start > budget_s:
            break
    return times


def time_interleaved(
    fns: Mapping[str, Callable[[], Any]],
    *,
    runs: int = 30,
    warmup: int = 5,
    device: torch.device | None = None,
    settle: int = 1,
) -> dict[str, list[float]]:
    """Like :func:`time_calls` for several callables at once, round-robin: each round calls every
    callable once, starting one further each round, so slow drifts in machine load are shared.

    ``settle`` untimed calls of the same callable precede each timed call: the time is then that of
    a process running this case repeatedly (a stream of frames), not of one whose caches another
    case has just filled with its own weights and activations (that cold-cache penalty hits small
    networks hardest). ``settle=0`` times every call straight after the previous case's.
    """
    if settle < 0:
        raise ValueError(f"settle must be >= 0, got {settle}")
    device = device or torch.device("cpu")
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    _sync(device)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(runs):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            for _ in range(settle):
                fns[name]()
            _sync(device)
            t0 = time.perf_counter()
            fns[name]()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


def _read_status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_memory_mb(fn: Callable[[], Any], device: torch.device) -> float | None:
    """Memory one call of ``fn`` needs.

    CUDA: ``torch.cuda.max_memory_allocated`` during the call (every tensor on the device: weights,
    CUDA-graph pools, activations). CPU (Linux, glibc): growth of the process's resident-set high-water
    mark over its size before the call, after returning freed heap memory to the OS (activations and
    workspace; weights are already resident). None where the OS offers no such figure.
    """
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        _sync(device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    malloc_trim()  # hand freed heap memory back, so that the call's allocations show up as RSS growth
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        return None
    before = _read_status_kb("VmRSS")
    fn()
    peak = _read_status_kb("VmHWM")
    if before is None or peak is None:
        return None
    return max(peak - before, 0) / 1024



def _cpuinfo(*keys: str) -> dict[str, str]:
    """The first value of each of ``keys`` in /proc/cpuinfo (empty where there is none)."""
    found: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in keys and key not in found:
                    found[key] = value.strip()
                    if len(found) == len(keys):
                        break
    except OSError:
        pass
    return found


def _cpu_name() -> str:
    return _cpuinfo("model name").get("model name") or platform.processor() or platform.machine()


_ENV_VARS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "MKL_NUM_THREADS",
             "ONEDNN_DEFAULT_FPMATH_MODE", "CUDA_VISIBLE_DEVICES")


def _cpu_family_model() -> str | None:
    """``family F model M`` from /proc/cpuinfo (virtual machines often hide the model name)."""
    fields = _cpuinfo("cpu family", "model")
    return f"family {fields['cpu family']} model {fields['model']}" if len(fields) == 2 else None


def environment(device: torch.device) -> dict[str, Any]:
    """Device name, library versions, threads, CPU capability and load."""
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    cuda = device.type == "cuda"
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else _cpu_name(),
        "cpu_name": _cpu_name(),
        "cpu_family_model": _cpu_family_model(),
        "cpu_count": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_bf16": cpu_supports_bf16(),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "onnxruntime": ort_version,
        "irstd": __version__,
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        # fp32 eager on CUDA uses TF32 where these allow it (PyTorch's defaults: cuDNN yes, matmul no)
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32 if cuda else None,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32 if cuda else None,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        # threading settings that change CPU timings (OMP_WAIT_POLICY=PASSIVE helps on a shared CPU)
        "env": {k: os.environ[k] for k in _ENV_VARS if k in os.environ},
        # large tensors' memory reused rather than page-faulted anew on every call (docs/speed.md)
        "malloc_retains_memory": memory_retained(),
    }

