"""Networks for IRSTD, all built through :func:`create_model`; checkpoints and shipped weights.

This package is the one documented import path for building, saving and loading models
(``from irstd.models import create_model, load_model``). Its infrastructure is layered as timm's,
each module importing only those before it: :mod:`._registry` (names → networks, ``model.tag``
split) ← :mod:`.spec` (what a model argument names) ← :mod:`.pretrained` (shipped weights, URLs) ←
:mod:`.checkpoint` (the file format) ← :mod:`._factory` (:func:`create_model`); :mod:`.publishing`
writes new shipped weights and :mod:`.paper_figures` holds the published cost figures.

Importing this package imports every module in it (not its subpackages: ``layers/`` holds the
shared building blocks), which registers the networks each defines: adding a model is adding a
file, with no list to edit.
"""

import importlib
import pkgutil

from ._factory import create_model
from ._registry import ModelEntry, get_model_entry, is_model, list_models, register_model, split_name_tag
from .base import IRSTDModel, fold_threshold, logit_bias, main_logits
from .checkpoint import FORMAT_VERSION, folded_offset, load_model, model_metadata, read_checkpoint, save_checkpoint
from .pretrained import PretrainedTag, get_pretrained, list_pretrained, pretrained_tags, resolve_weights
from .spec import ModelSpec, is_weights_name, resolve_model_spec

for _info in pkgutil.iter_modules(__path__):
    # networks are top-level modules; subpackages (``layers``) hold building blocks and register nothing
    if not _info.name.startswith("_") and not _info.ispkg:
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = [
    "FORMAT_VERSION",
    "IRSTDModel",
    "ModelEntry",
    "ModelSpec",
    "PretrainedTag",
    "create_model",
    "fold_threshold",
    "folded_offset",
    "get_model_entry",
    "get_pretrained",
    "is_model",
    "is_weights_name",
    "list_models",
    "list_pretrained",
    "load_model",
    "logit_bias",
    "main_logits",
    "model_metadata",
    "pretrained_tags",
    "read_checkpoint",
    "register_model",
    "resolve_model_spec",
    "resolve_weights",
    "save_checkpoint",
    "split_name_tag",
]
