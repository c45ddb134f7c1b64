"""Layouts of the distributed run, in one process: which items each rank gets, and how they are drawn."""

from __future__ import annotations

import pytest
import torch

from irstd.core.distributed import choose_backend, process_group, shard_range
from irstd.engine.config import TrainConfig
from irstd.engine.data import GlobalBatchSampler, SeededItems, global_batch
from irstd.errors import ConfigError


def _steps(n: int, b: int, world: int, accum: int, seed: int = 3) -> list[list[int]]:
    """Sorted items of each optimiser step, gathered over the ranks."""
    per_rank = [list(GlobalBatchSampler(n, b, seed=seed, rank=r, world=world, accumulation=accum)) for r in range(world)]
    assert len({len(p) for p in per_rank}) == 1  # every rank runs the same number of micro-batches (DDP)
    steps = []
    for k in range(len(per_rank[0]) // accum):
        items = [i for p in per_rank for batch in p[k * accum : (k + 1) * accum] for i in batch]
        steps.append(sorted(items))
    return steps


@pytest.mark.parametrize("world,b,accum", [(2, 4, 1), (4, 2, 1), (1, 4, 2), (2, 2, 2)])
def test_every_layout_of_a_global_batch_of_8_sees_the_same_items_per_step(world: int, b: int, accum: int) -> None:
    one = _steps(21, 8, 1, 1)
    assert len(one) == 2 and all(len(s) == 8 for s in one)
    assert _steps(21, b, world, accum) == one


def test_the_epoch_order_depends_on_the_seed_and_no_item_repeats() -> None:
    a, b = _steps(32, 4, 2, 1, seed=1), _steps(32, 4, 2, 1, seed=2)
    assert a != b
    flat = [i for s in a for i in s]
    assert len(flat) == len(set(flat)) == 32


def test_a_set_smaller_than_one_global_batch() -> None:
    assert list(GlobalBatchSampler(3, 8, seed=0)) and len(GlobalBatchSampler(3, 8, seed=0)) == 1  # one process: one batch
    with pytest.raises(ConfigError, match="fewer than one global batch of 16"):
        GlobalBatchSampler(10, 4, seed=0, rank=0, world=2, accumulation=2)


class _Draws(torch.utils.data.Dataset):
    """An item is a random draw from torch's global generator, as the training transforms make."""

    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int) -> float:
        return float(torch.rand(()))


def test_an_item_is_drawn_alike_in_any_loading_order_and_the_caller_stream_is_kept() -> None:
    items = SeededItems(_Draws(), seed=5, epoch=2)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    forward = [items[i] for i in range(6)]
    backward = [items[i] for i in reversed(range(6))][::-1]
    assert forward == backward and len(set(forward)) == 6
    assert torch.equal(torch.get_rng_state(), before)
    assert [SeededItems(_Draws(), 5, 3)[i] for i in range(6)] != forward  # another epoch, other draws


def test_shards_are_contiguous_blocks_in_rank_order() -> None:
    for n in (0, 1, 5, 8):
        blocks = [list(shard_range(n, r, 3)) for r in range(3)]
        assert [i for b in blocks for i in b] == list(range(n))
    assert list(shard_range(5)) == list(range(5))  # alone: everything


def test_global_batch_and_the_distributed_keys() -> None:
    cfg = TrainConfig(batch_size=4, grad_accum=3)
    assert global_batch(cfg, world=2) == 24 and global_batch(cfg) == 12
    with pytest.raises(ConfigError, match="grad_accum"):
        TrainConfig.from_dict({"grad_accum": 0})
    with pytest.raises(ConfigError, match="dist_backend"):
        TrainConfig.from_dict({"dist_backend": "mpi"})


def test_backend_choice_and_a_single_process_group_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose_backend("auto", "cpu") == "gloo"
    with pytest.raises(ConfigError, match="dist_backend"):
        choose_backend("mpi", "cpu")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with process_group("gloo") as active:
        assert active is False
        assert not torch.distributed.is_initialized()
