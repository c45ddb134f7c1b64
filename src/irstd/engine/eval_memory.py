"""The memory budget of an evaluation (``irstd evaluate --max-memory``).

An evaluation runs whole frames (the protocol: native resolution, no tiles), so the budget cannot tile: a
frame whose estimated peak (:mod:`irstd.inference.memory_budget`) exceeds it whole is refused before any
frame is scored — one line naming the frames, or, with ``skip_invalid``, skipped and counted — and the batch
size is lowered until a batch of the largest frame fits. Sizes come from the headers (nothing is decoded).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from ..core.errors import DataError
from ..data.io import read_header
from ..inference.memory_budget import MemoryBudget, bytes_per_pixel, format_bytes, resolve_budget

__all__ = ["fit_evaluation_budget"]

log = logging.getLogger(__name__)


def fit_evaluation_budget(dataset: Any, model_name: str | None, precision: str, stride: int,
                          max_memory: int | str | None, batch_size: int, skip_invalid: bool) -> tuple[int, int]:
    """Check ``dataset``'s frames (its ``items``: image paths and names) against the budget; returns (batch
    size that fits, frames skipped). Frames over the budget raise one :class:`DataError` listing them, or with
    ``skip_invalid`` are removed from ``dataset.items``. Generated scenes and no budget: nothing to check."""
    limit = resolve_budget(max_memory)
    items: Sequence[Any] | None = getattr(dataset, "items", None)
    if limit is None or getattr(dataset, "generated", False) or not items:
        return batch_size, 0
    mode = "fast" if precision == "fast" else "fp32"
    budget = MemoryBudget(limit, bytes_per_pixel(model_name, mode), stride, f"{model_name or 'an unknown model'} ({mode})")
    keep, refused, largest = [], [], 0
    for pair in items:
        h, w = read_header(pair.image).size
        need = budget.estimate(h, w)
        if need > limit:
            refused.append(f"{pair.image} ({w}x{h}: about {format_bytes(need)})")
            continue
        keep.append(pair)
        largest = max(largest, need)
    if refused:
        head = f"{len(refused)} frame(s) need more than the memory budget of {format_bytes(limit)} whole with {budget.what}"
        if not skip_invalid:
            shown = "; ".join(refused[:3]) + (f"; … {len(refused) - 3} more" if len(refused) > 3 else "")
            raise DataError(f"{head} (an evaluation runs whole frames): {shown}; raise --max-memory or skip them "
                            "with --skip-invalid")
        for line in refused:
            log.warning("skipped %s: above the memory budget of %s whole", line, format_bytes(limit))
        dataset.items = keep
    fits = max(1, min(batch_size, limit // max(largest, 1)))
    if fits < batch_size:
        log.info("batch size %d -> %d: a batch of the largest frame must fit the memory budget of %s",
                 batch_size, fits, format_bytes(limit))
    return fits, len(refused)
