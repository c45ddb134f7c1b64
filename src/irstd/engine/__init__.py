"""Training, evaluation and run folders."""

from ..models.checkpoint import load_model, read_checkpoint, save_checkpoint
from .config import TrainConfig, load_config
from .epoch import train_one_epoch
from .eval_loop import run_evaluation
from .eval_options import EvalOptions
from .evaluation import EvalReport, evaluate_checkpoint, evaluate_model
from .run_folder import RunFolder, load_run_config
from .trainer import FitResult, fit

__all__ = [
    "EvalOptions",
    "EvalReport",
    "FitResult",
    "RunFolder",
    "TrainConfig",
    "evaluate_checkpoint",
    "evaluate_model",
    "fit",
    "load_config",
    "load_model",
    "load_run_config",
    "read_checkpoint",
    "run_evaluation",
    "save_checkpoint",
    "train_one_epoch",
]
