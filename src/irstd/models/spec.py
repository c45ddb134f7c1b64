"""What a model argument names: one classification of the text users give for a model.

Every command and API that takes a model (``irstd detect MODEL``, :meth:`Predictor.from_checkpoint`,
:func:`~irstd.models.load_model`, the service) accepts the same forms; :func:`resolve_model_spec` says
which one a text is, so no caller tests suffixes or prefixes of its own:

==============  =====================================================  ==============================
kind            text                                                   who opens it
==============  =====================================================  ==============================
``url``         ``https://…/m.safetensors#sha256=<hex>``               :mod:`.pretrained` (download)
``onnx``        a file ending in ``.onnx`` (``irstd export``)          ``inference.backends.onnx``
``file``        an existing file (a safetensors checkpoint), or any     :mod:`.checkpoint`
                text that is none of the others (its reader names it)
``classical``   a registered classical detector (``tophat``)           :func:`~irstd.models.create_model`
``model``       a registered learned model without weights (``unet``)  nobody: a usage error
``shipped``     shipped weights ``model.tag`` (``sgem_unet.sirst``)    :mod:`.pretrained` (the table)
==============  =====================================================  ==============================

An existing file wins over a name (a file called ``tophat`` is a file). This module only classifies:
it opens nothing and imports no loader, so every layer may use it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ._registry import get_model_entry, is_model, split_name_tag

__all__ = ["FILE_SUFFIXES", "URL_SCHEMES", "ModelSpec", "SpecKind", "is_weights_name", "resolve_model_spec"]

SpecKind = Literal["url", "onnx", "file", "classical", "model", "shipped"]

URL_SCHEMES = ("http://", "https://")
#: ``unet.safetensors`` is a file name, not model ``unet`` with tag ``safetensors``
FILE_SUFFIXES = frozenset({"safetensors", "onnx", "pt", "pth", "ckpt", "bin", "yaml", "json"})


@dataclass(frozen=True)
class ModelSpec:
    """A classified model argument: its ``kind`` (see the module table) and the parts that kind has."""

    kind: SpecKind
    text: str  #: the argument as given
    model: str | None = None  #: the registered model (``classical``, ``model``, ``shipped``)
    tag: str | None = None  #: the weights tag (``shipped``)

    @property
    def path(self) -> Path:
        """The argument as a local path (``file`` and ``onnx``; ``~`` expanded)."""
        return Path(self.text).expanduser()

    @property
    def is_local_file(self) -> bool:
        """True for a local file (``file`` or ``onnx``): what a command writes may go beside it. Whether it
        exists is its reader's check."""
        return self.kind in ("file", "onnx")

    @property
    def is_onnx(self) -> bool:
        """True for an ``.onnx`` file, which runs in ONNX Runtime instead of PyTorch."""
        return self.kind == "onnx"


def is_weights_name(spec: object) -> bool:
    """True when ``spec`` is a string of the form ``model.tag`` naming a registered model (any tag)."""
    if not isinstance(spec, str) or "/" in spec or os.sep in spec:
        return False
    model, tag = split_name_tag(spec)
    return tag is not None and is_model(model) and tag.isidentifier() and tag not in FILE_SUFFIXES


def resolve_model_spec(spec: str | Path) -> ModelSpec:
    """Classify a model argument (see the module docstring); never fails and opens no file.

    A :class:`~pathlib.Path` is always a file (``onnx`` by its suffix); only strings may be names or URLs.
    """
    text = str(spec)
    if isinstance(spec, str) and text.startswith(URL_SCHEMES):
        return ModelSpec("url", text)
    path = Path(text).expanduser()
    if path.suffix.lower() == ".onnx":
        return ModelSpec("onnx", text)
    if isinstance(spec, Path) or path.is_file():
        return ModelSpec("file", text)
    if is_model(text) and not path.exists():
        kind = "classical" if get_model_entry(text).kind == "classical" else "model"
        return ModelSpec(kind, text, model=text)
    if is_weights_name(text):
        model, tag = split_name_tag(text)
        return ModelSpec("shipped", text, model=model, tag=tag)
    return ModelSpec("file", text)
