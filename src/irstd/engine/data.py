"""Datasets and loaders for a training run: a training list split into train/val, never the test list."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from ..data import (
    Compose,
    RandomCrop,
    RandomFlip,
    build_loader,
    compute_normalization,
    open_dataset,
    open_negatives,
    open_synthetic,
    pad_collate,
)
from ..data.loader import seed_worker
from ..core.distributed import rank, world_size
from ..core.errors import ConfigError
from ..core.padding import STRIDE_PAD_MODE
from ..core.seeding import epoch_seed, sample_seed
from ..data.stats import compute_input_range
from .config import TrainConfig
from .device_data import DeviceTrainSet, untransformed
from .mixed_batches import MixedBatchSampler, MixedDeviceBatches, MixedDraws, MixedTrainSet, NegativeCrops

__all__ = ["TrainData", "build_train_val", "GlobalBatchSampler", "SeededItems", "global_batch", "inherit_split_seed",
           "select_split", "split_seed"]

log = logging.getLogger(__name__)


@dataclass
class TrainData:
    """Training and validation sets of one run, with the normalisation fitted on the training part."""

    train: Dataset
    val: Dataset
    normalization: tuple[float, float]
    description: str
    cfg: TrainConfig
    stride: int
    device: str = "cpu"  # resolved device: decides pinned memory
    input_range: dict[str, Any] | None = None  # value range of the training frames (compute_input_range)
    negatives: NegativeCrops | None = None  # background frames mixed into every batch (cfg.negatives)
    select_names: list[str] = field(default_factory=list)  # the list's select frames (none for synthetic data)
    _on_device: DeviceTrainSet | None = field(default=None, repr=False)
    _val_batches: list[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def data_on_device(self) -> bool:
        """Whether the training frames live on the training device (config key ``device_data``)."""
        return resolve_device_data(self.cfg.device_data, self.device)

    def train_loader(self, epoch: int) -> Iterable[dict[str, Any]]:
        """This rank's shuffled micro-batches of ``epoch``: order and augmentation depend only on
        (seed, epoch), whatever the number of ranks, workers or accumulation steps (see
        :class:`GlobalBatchSampler` and :class:`SeededItems`), and whichever data path runs."""
        es = epoch_seed(self.cfg.seed, epoch)
        n_neg = self.negatives.per_batch if self.negatives is not None else 0
        sampler: Sampler[list[int]] = GlobalBatchSampler(
            len(self.train), self.cfg.batch_size - n_neg, seed=es, rank=rank(), world=world_size(),
            accumulation=self.cfg.grad_accum)
        if self.negatives is not None:  # n_pos target items, then n_neg background slots, per micro-batch
            sampler = MixedBatchSampler(sampler, len(self.train), n_neg, rank=rank(), world=world_size())
        train: Dataset = self.train if self.negatives is None else MixedTrainSet(self.train, self.negatives)
        if self.data_on_device:
            if self._on_device is None:  # decoded once, on first use
                crop, flip = train_transform(self.cfg).transforms
                self._on_device = DeviceTrainSet(untransformed(self.train), crop, flip, self.device)
            # the crop parameters of item i are drawn under the same per-item seed as the host path's item i
            if self.negatives is not None:
                items = SeededItems(MixedDraws(self._on_device.draws, self.negatives), self.cfg.seed, epoch)
                return MixedDeviceBatches(self._on_device, items, sampler)
            return self._on_device.batches(SeededItems(self._on_device.draws, self.cfg.seed, epoch), sampler)
        generator = torch.Generator()
        generator.manual_seed(es)
        workers = self.cfg.num_workers
        return DataLoader(
            SeededItems(train, self.cfg.seed, epoch), batch_sampler=sampler, num_workers=workers,
            generator=generator, worker_init_fn=seed_worker if workers > 0 else None,
            pin_memory=torch.device(self.device).type == "cuda", persistent_workers=workers > 0,
        )

    def val_loader(self, dataset: Dataset | None = None) -> Iterable[dict[str, Any]]:
        """Full-size validation images (``dataset``: a shard of them), padded to the stride per batch;
        kept on the device with ``device_data``."""
        dataset = self.val if dataset is None else dataset
        loader = build_loader(
            dataset, self.cfg.eval_batch_size, shuffle=False, num_workers=self.cfg.num_workers,
            collate_fn=pad_collate(self.stride, STRIDE_PAD_MODE), device=self.device,
        )
        if not self.data_on_device or dataset is not self.val:
            return loader
        if self._val_batches is None:
            self._val_batches = [{k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in b.items()}
                                 for b in loader]
        return self._val_batches


def resolve_device_data(choice: str, device: str | torch.device) -> bool:
    """``device_data`` = on | off | auto. ``auto`` is on for every device: the device-resident path is the
    faster one on CUDA and on the CPU alike (``benchmarks/device_data.py``) and draws the same batches."""
    if choice == "auto":
        return True
    return choice == "on"


def global_batch(cfg: TrainConfig, world: int | None = None) -> int:
    """Images per optimiser step: ranks × per-rank batch × accumulation steps."""
    return (world_size() if world is None else world) * cfg.batch_size * cfg.grad_accum


class SeededItems(Dataset):
    """``dataset`` whose item ``i`` is loaded under torch seed ``sample_seed(seed, epoch, i)``.

    The training transforms draw from torch's global generator; seeding it per item makes an item's
    crop and flips independent of which rank, worker or batch position loads it (the condition for
    N ranks to train exactly like one process over the same global batches). The caller's generator
    state is restored afterwards.
    """

    def __init__(self, dataset: Dataset, seed: int, epoch: int) -> None:
        self.dataset, self.seed, self.epoch = dataset, int(seed), int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        state = torch.get_rng_state()
        torch.manual_seed(sample_seed(self.seed, self.epoch, int(index)))
        try:
            return self.dataset[index]
        finally:
            torch.set_rng_state(state)


class GlobalBatchSampler(Sampler[list[int]]):
    """One rank's micro-batches of a shuffled epoch.

    The epoch's permutation ``perm`` of ``range(n)`` comes from ``seed`` alone. Optimiser step ``k``
    uses the global batch ``perm[k*G:(k+1)*G]``, ``G = world * batch_size * accumulation``; its
    micro-batch ``j`` on rank ``r`` is the ``batch_size`` items at offset ``(j*world + r)*batch_size``.
    Every rank gets the same number of micro-batches (a DDP requirement); the ``n % G`` items left
    over are dropped, except that one process with fewer than ``batch_size`` items trains on one
    smaller batch (as a plain shuffled loader would).
    """

    def __init__(self, n: int, batch_size: int, *, seed: int, rank: int = 0, world: int = 1,
                 accumulation: int = 1) -> None:
        self.n, self.batch_size, self.seed = int(n), int(batch_size), int(seed)
        self.rank, self.world, self.accumulation = int(rank), int(world), int(accumulation)
        g = self.batch_size * self.world * self.accumulation
        if self.n < g and (self.world > 1 or self.accumulation > 1):
            raise ConfigError(f"the training set has {self.n} items, fewer than one global batch of {g} "
                              f"({self.world} ranks x batch_size {self.batch_size} x grad_accum {self.accumulation})")
        self.steps = self.n // g if self.n >= g else 1

    def __len__(self) -> int:
        return self.steps * self.accumulation

    def __iter__(self):
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        perm = torch.randperm(self.n, generator=generator).tolist()
        if self.n < self.batch_size:  # one process, a set smaller than a batch
            yield perm
            return
        b, g = self.batch_size, self.batch_size * self.world * self.accumulation
        for k in range(self.steps):
            for j in range(self.accumulation):
                start = k * g + (j * self.world + self.rank) * b
                yield perm[start : start + b]


def train_transform(cfg: TrainConfig) -> Compose:
    """Random crop (optionally centred on targets) and flips."""
    return Compose([RandomCrop(cfg.crop_size, target_prob=cfg.target_crop_prob), RandomFlip()])


def build_train_val(cfg: TrainConfig, stride: int, device: str = "cpu") -> TrainData:
    """Open ``cfg.data`` (or the synthetic generator) and carve the validation part from the training list;
    with a ``negatives`` block, also decode its frames (normalised with the training part's statistics)."""
    data = _build_targets(cfg, stride, device)
    neg = cfg.negatives_config
    if neg is not None:
        frames = open_negatives(neg.root, split=neg.split, groups=neg.groups)
        _, flip = train_transform(cfg).transforms
        data.negatives = NegativeCrops(frames, data.normalization, cfg.crop_size, flip, neg.per_batch,
                                       neg.mined_per_batch)
        data.description += (f" + negatives {neg.root} [{neg.split}] ({len(frames)} frames, "
                             f"{neg.per_batch} of {cfg.batch_size} crops per batch)")
    return data


def _build_targets(cfg: TrainConfig, stride: int, device: str) -> TrainData:
    if cfg.data is None:
        train = open_synthetic("train", cfg.synthetic_train, cfg.synthetic_seed, transform=train_transform(cfg))
        # validation scenes from their own random stream (SPLIT_STREAMS: disjoint from train and test), same normalisation
        val = open_synthetic("val", cfg.synthetic_val, cfg.synthetic_seed, normalization=train.normalization)
        desc = f"synthetic scenes (seed {cfg.synthetic_seed})"
        return TrainData(train, val, train.normalization, desc, cfg, stride, device, compute_input_range(train))
    common: dict[str, Any] = dict(
        split=cfg.split, split_file=cfg.split_file, mask_dir=cfg.mask_dir, skip_invalid=cfg.skip_invalid
    )
    full = open_dataset(cfg.data, **common, normalization=(0.0, 1.0))  # only its item list is used here
    val_idx, train_idx = select_split(len(full), cfg)
    norm = compute_normalization([full.items[i] for i in train_idx])
    input_range = compute_input_range([full.items[i] for i in train_idx])
    train = Subset(open_dataset(cfg.data, **common, transform=train_transform(cfg), normalization=norm), train_idx)
    val = Subset(open_dataset(cfg.data, **common, normalization=norm), val_idx)
    split = cfg.split_file or cfg.split
    desc = f"{cfg.data} [{split}] ({getattr(full.layout, 'name', full.layout)} layout)"
    return TrainData(train, val, norm, desc, cfg, stride, device, input_range,
                     select_names=[full.items[i].name for i in val_idx])


#: the config keys that fix the list a run's select frames are carved from
_LIST_KEYS = ("data", "split", "split_file", "mask_dir", "skip_invalid", "val_fraction")


def select_split(n_items: int, cfg: TrainConfig) -> tuple[list[int], list[int]]:
    """(select, train) indices of a training list of ``n_items``: ``round(val_fraction × n)`` drawn by
    ``split_seed(cfg)``, each part in list order."""
    order = np.random.default_rng(split_seed(cfg)).permutation(n_items)
    n_val = int(round(cfg.val_fraction * n_items)) if cfg.val_fraction > 0 else 0
    return sorted(order[:n_val].tolist()), sorted(order[n_val:].tolist())


def split_seed(cfg: Mapping[str, Any] | TrainConfig) -> int:
    """The seed that carves a run's select frames from its training list (a config or its saved dict)."""
    get = cfg.get if isinstance(cfg, Mapping) else lambda key: getattr(cfg, key)
    return get("seed") if get("split_seed") is None else get("split_seed")


def inherit_split_seed(cfg: TrainConfig, start: Mapping[str, Any] | None, spec: str) -> TrainConfig:
    """``cfg`` carving the same select frames as the run ``spec`` comes from (``start``: its saved config),
    when both train on the same list and ``split_seed`` is not set: otherwise a fine-tuning run with
    another seed would select its checkpoint on frames its starting weights were trained on."""
    if cfg.data is None or not start or any(start.get(k) != getattr(cfg, k) for k in _LIST_KEYS):
        return cfg  # another list (or synthetic data): nothing of it was trained on
    theirs = split_seed(start)
    if cfg.split_seed is None:
        if theirs != cfg.seed:
            log.info("init_weights %s trained on this list with split seed %d: its select frames are kept "
                     "(split_seed %d), so they stay unseen by the start", spec, theirs, theirs)
        return dataclasses.replace(cfg, split_seed=theirs)
    if cfg.split_seed != theirs:
        log.warning("split_seed %d carves other select frames than init_weights %s (split seed %d), which "
                    "trained on most of them: the select figures are not held out", cfg.split_seed, spec, theirs)
    return cfg
