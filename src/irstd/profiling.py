"""Parameter and MAC counting, and the entry point to the speed benchmark.

MACs are counted with ``torch.utils.flop_counter`` (convolutions, matrix products) and reported
as FLOPs / 2, the convention IRSTD papers print as "GFLOPs" (thop's MACs).

The benchmark behind ``irstd bench`` lives in :mod:`irstd.bench`; its public functions
(``run_benchmark``, ``run_cases``, ``to_markdown``, ``fast_mode_agreement``, …) are also reachable
from here, imported on first use.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_params", "count_macs"]

_BENCH_NAMES = ("Case", "run_benchmark", "run_cases", "to_markdown", "fast_mode_agreement", "AgreementResult",
                "time_calls", "time_interleaved", "timing_stats", "environment")


def __getattr__(name: str):
    # lazy: irstd.bench imports this module, so a top-level import would be circular
    if name in _BENCH_NAMES:
        from . import bench

        return getattr(bench, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_macs(model: nn.Module, input_size: Sequence[int] = (1, 1, 256, 256)) -> int:
    """Multiply-accumulates of one eval-mode forward pass on a zero input of ``input_size``."""
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        x = torch.zeros(tuple(input_size), device=device)
        with FlopCounterMode(display=False) as counter:
            model(x)
        return counter.get_total_flops() // 2
    finally:
        model.train(was_training)
