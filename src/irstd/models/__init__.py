"""Networks for IRSTD, all built through :func:`create_model`.

Importing this package imports every module in it (not its subpackages: ``layers/`` holds the
shared building blocks), which registers the networks each defines: adding a model is adding a
file, with no list to edit.
"""

import importlib
import pkgutil

from ._registry import ModelEntry, create_model, get_model_entry, is_model, list_models, register_model
from .base import IRSTDModel, fold_threshold, logit_bias, main_logits
from ._pretrained import PretrainedTag, get_pretrained, is_weights_name, list_pretrained, pretrained_tags, resolve_weights
from .checkpoint import FORMAT_VERSION, folded_offset, load_model, model_metadata, read_checkpoint, save_checkpoint

for _info in pkgutil.iter_modules(__path__):
    # networks are top-level modules; subpackages (``layers``) hold building blocks and register nothing
    if not _info.name.startswith("_") and not _info.ispkg:
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = [
    "FORMAT_VERSION",
    "IRSTDModel",
    "PretrainedTag",
    "ModelEntry",
    "create_model",
    "get_model_entry",
    "get_pretrained",
    "is_model",
    "is_weights_name",
    "list_models",
    "list_pretrained",
    "load_model",
    "fold_threshold",
    "folded_offset",
    "logit_bias",
    "main_logits",
    "model_metadata",
    "pretrained_tags",
    "read_checkpoint",
    "register_model",
    "resolve_weights",
    "save_checkpoint",
]
