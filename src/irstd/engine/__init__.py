"""Training, evaluation and checkpoints."""

from .checkpoint import load_model, read_checkpoint, save_checkpoint
from .config import TrainConfig, load_config
from .trainer import FitResult, evaluate, fit, load_run_config, train_one_epoch

__all__ = [
    "FitResult",
    "TrainConfig",
    "evaluate",
    "fit",
    "load_config",
    "load_model",
    "load_run_config",
    "read_checkpoint",
    "save_checkpoint",
    "train_one_epoch",
]
