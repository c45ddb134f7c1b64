"""Training, evaluation and run folders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

if TYPE_CHECKING:
    # Aliases only: checkpoints belong to irstd.models, the one documented path (``from irstd.models import
    # load_model``). They stay importable from here because an older README taught ``from irstd.engine
    # import load_model``; they are not part of the engine's API (not in __all__).
    from ..models import load_model, read_checkpoint, save_checkpoint  # noqa: F401
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
    "load_run_config",
    "run_evaluation",
    "train_one_epoch",
]

__getattr__, __dir__ = lazy_exports(__name__)
