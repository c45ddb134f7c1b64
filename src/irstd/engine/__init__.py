"""Training, evaluation and run folders."""

from ..models.checkpoint import load_model, read_checkpoint, save_checkpoint
from .config import TrainConfig, load_config
from .evaluation import EvalReport, evaluate_checkpoint, evaluate_model
from .trainer import FitResult, evaluate, fit, load_run_config, train_one_epoch

__all__ = [
    "EvalReport",
    "FitResult",
    "TrainConfig",
    "evaluate",
    "evaluate_checkpoint",
    "evaluate_model",
    "fit",
    "load_config",
    "load_model",
    "load_run_config",
    "read_checkpoint",
    "save_checkpoint",
    "train_one_epoch",
]
