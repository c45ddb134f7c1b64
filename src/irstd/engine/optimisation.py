"""Optimisers and learning-rate schedules by name: the one table the config checks and the trainer uses.

:data:`OPTIMIZERS` and :data:`SCHEDULERS` map the config values (``optimizer``, ``scheduler``) to what
they build; :class:`~irstd.engine.config.TrainConfig` accepts exactly their keys.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Protocol

import torch

__all__ = ["OPTIMIZERS", "SCHEDULERS", "build_ema", "build_optimizer", "build_scheduler", "names"]

Params = Iterable[torch.nn.Parameter]


class OptimSettings(Protocol):
    """The keys of a :class:`~irstd.engine.config.TrainConfig` read here (the config imports this module)."""

    optimizer: str
    lr: float
    weight_decay: float
    momentum: float
    scheduler: str
    epochs: int
    warmup_epochs: int
    min_lr: float
    milestones: list[int]
    gamma: float


#: ``optimizer`` value → the optimiser it builds from the config's lr, weight_decay (and momentum)
OPTIMIZERS: dict[str, Callable[[OptimSettings, Params], torch.optim.Optimizer]] = {
    "adam": lambda cfg, p: torch.optim.Adam(p, lr=cfg.lr, weight_decay=cfg.weight_decay),
    "adamw": lambda cfg, p: torch.optim.AdamW(p, lr=cfg.lr, weight_decay=cfg.weight_decay),
    "sgd": lambda cfg, p: torch.optim.SGD(p, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                                          nesterov=True),
}


def _cosine(cfg: OptimSettings, epoch: int) -> float:
    """Half a cosine from 1 down to ``min_lr / lr`` over the epochs after the warm-up."""
    span = max(1, cfg.epochs - cfg.warmup_epochs)
    t = min(1.0, (epoch - cfg.warmup_epochs) / span)
    floor = min(cfg.min_lr / cfg.lr, 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))


#: ``scheduler`` value → the LR factor of an epoch after the warm-up
SCHEDULERS: dict[str, Callable[[OptimSettings, int], float]] = {
    "constant": lambda cfg, epoch: 1.0,
    "cosine": _cosine,
    "multistep": lambda cfg, epoch: cfg.gamma ** sum(epoch >= m for m in cfg.milestones),
}


def names(table: dict[str, object]) -> str:
    """``"a, b or c"``: a table's keys for a message."""
    keys = list(table)
    return ", ".join(keys[:-1]) + f" or {keys[-1]}" if len(keys) > 1 else keys[0]


def build_optimizer(cfg: OptimSettings, params: Params) -> torch.optim.Optimizer:
    """The optimiser ``cfg.optimizer`` names (:data:`OPTIMIZERS`)."""
    return OPTIMIZERS[cfg.optimizer](cfg, params)


def build_scheduler(cfg: OptimSettings, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-epoch LR factor: linear warm-up, then the schedule ``cfg.scheduler`` names (:data:`SCHEDULERS`)."""
    after_warmup = SCHEDULERS[cfg.scheduler]

    def factor(epoch: int) -> float:
        if epoch < cfg.warmup_epochs:
            return (epoch + 1) / (cfg.warmup_epochs + 1)
        return after_warmup(cfg, epoch)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build_ema(model: torch.nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel | None:
    """An exponential moving average of ``model``'s weights and buffers (None when ``decay`` is 0)."""
    if decay <= 0:
        return None
    swa = torch.optim.swa_utils
    return swa.AveragedModel(model, multi_avg_fn=swa.get_ema_multi_avg_fn(decay), use_buffers=True)
