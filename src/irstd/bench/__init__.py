"""Latency, throughput and memory of registered models, measured the same way for every model.

One *case* is (model, mode, batch, height, width); ``mode`` is ``fp32`` (eager, full precision),
``fast`` (the device's fast mode of :mod:`irstd.inference`), ``onnx`` (ONNX Runtime on the CPU) or
``int8`` (ONNX Runtime, static int8 of :mod:`irstd.export.quantize`).
Every case runs the same :class:`irstd.inference.ModelRunner` the predictor uses, on a random
normalised input of that shape, so the figures are those of real inference minus pre- and
post-processing.

Method: ``warmup`` untimed calls, then ``runs`` timed calls, each bracketed by device
synchronisation; the report gives the median and the spread (10th–90th percentile, min, max).
With ``interleave=True`` the cases run round-robin (one call of each per round, rotating the start),
so that a load change on a shared machine hits every case alike — the way to compare cases "side by
side in one run". MACs are counted on the meta device (no compute). The *floor* of a case is its
FLOPs (2 × MACs) divided by this machine's rate on a large 3×3 convolution in the fast mode's dtype,
measured by the same timer: the time the network would take if every layer ran at that rate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

if TYPE_CHECKING:
    from .accuracy import (INT8_MAX_IOU_DELTA_POINTS, INT8_MAX_PD_DELTA_POINTS, MAX_IOU_DELTA_POINTS, MIN_PIXEL_AGREEMENT,
                           AgreementResult, fast_mode_agreement, int8_guard, mode_agreement)
    from .cases import MODES, SCHEMA, published_figures, Case, conv_rate_case, count_macs_at, plan_cases, run_benchmark, run_cases
    from .report import save_report, to_markdown
    from .timing import environment, peak_memory_mb, time_calls, time_interleaved, timing_stats

__all__ = [
    "SCHEMA",
    "MODES",
    "published_figures",
    "Case",
    "timing_stats",
    "time_calls",
    "time_interleaved",
    "peak_memory_mb",
    "conv_rate_case",
    "count_macs_at",
    "environment",
    "plan_cases",
    "run_cases",
    "run_benchmark",
    "to_markdown",
    "save_report",
    "AgreementResult",
    "fast_mode_agreement",
    "mode_agreement",
    "int8_guard",
    "MIN_PIXEL_AGREEMENT",
    "MAX_IOU_DELTA_POINTS",
    "INT8_MAX_IOU_DELTA_POINTS",
    "INT8_MAX_PD_DELTA_POINTS",
]

__getattr__, __dir__ = lazy_exports(__name__)
