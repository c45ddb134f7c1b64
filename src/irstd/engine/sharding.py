"""Splitting a dataset across ranks and merging what the ranks counted, in input order.

Rank ``r`` of ``N`` takes the ``r``-th contiguous block of the items
(:func:`irstd.core.distributed.shard_range`); accumulators are gathered and merged in rank order, so
the merged counts equal those of one process that saw every item in order. Alone, both are no-ops.
"""

from __future__ import annotations

from typing import Any, Sequence, TypeVar

from torch.utils.data import Dataset, Subset

from ..core.distributed import all_gather_object, is_distributed, shard_range

__all__ = ["shard_dataset", "gather_merged", "gather_concat"]

A = TypeVar("A")


def shard_dataset(dataset: Dataset) -> Dataset:
    """This rank's contiguous block of ``dataset`` (``dataset`` itself alone)."""
    if not is_distributed():
        return dataset
    return Subset(dataset, list(shard_range(len(dataset))))  # type: ignore[arg-type]


def gather_merged(acc: A) -> A:
    """Every rank's accumulator (``SegMetrics``, ``ThresholdSweep``) merged in rank order, on every rank."""
    if not is_distributed():
        return acc
    states = all_gather_object(acc.state_dict())  # type: ignore[attr-defined]
    kind = type(acc)
    return kind.from_state_dict(states[0]).merge(*(kind.from_state_dict(s) for s in states[1:]))  # type: ignore[attr-defined]


def gather_concat(items: Sequence[Any]) -> list[Any]:
    """Every rank's list, concatenated in rank order (input order for contiguous shards)."""
    return [x for part in all_gather_object(list(items)) for x in part]
