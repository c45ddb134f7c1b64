"""The options of an evaluation (:func:`irstd.engine.evaluate_model`), grouped by what they decide.

:class:`EvalOptions` holds one small dataclass per concern: the data scored (:class:`EvalData`), how
the network runs (:class:`RunMode`), the threshold sweep (:class:`SweepOptions`), predicted masks
written out (:class:`MaskOutput`) and the target-free frames (:class:`NegativesOptions`).
:meth:`EvalOptions.from_keywords` maps the flat keyword names ``evaluate_model`` has always taken.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

__all__ = ["EvalData", "EvalOptions", "MaskOutput", "NegativesOptions", "RunMode", "SweepOptions"]


@dataclass(frozen=True)
class EvalData:
    """What is scored: split ``split`` (or the stems of ``split_file``) of the dataset at ``root``, or with
    ``root=None`` ``synthetic_n`` generated scenes of ``split`` (:data:`irstd.data.SPLIT_STREAMS`)."""

    root: str | Path | None = None
    split: str = "test"
    split_file: str | Path | None = None
    mask_dir: str | Path | None = None  #: corrected masks overriding the dataset's, by stem
    skip_invalid: bool = False
    synthetic_n: int = 50
    synthetic_seed: int = 0
    batch_size: int = 1
    num_workers: int = 0


@dataclass(frozen=True)
class RunMode:
    """How the network runs: ``precision`` ``fp32`` (the model itself, under autocast to ``amp`` when one
    is given), ``fast`` (the predictor's fast mode; ``amp`` picks its dtype) or ``int8`` (an int8 ONNX file)."""

    device: str = "auto"
    amp: str | None = None
    precision: str = "fp32"
    progress: bool = False
    #: memory budget per frame (bytes, "4G", "auto"; None: none): frames above it whole are refused
    #: (:mod:`irstd.engine.eval_memory`)
    max_memory: int | str | None = None


@dataclass(frozen=True)
class SweepOptions:
    """Curves over thresholds with exact pixel AP / ROC AUC (``enabled``); ``thresholds`` are probabilities
    (default :func:`irstd.metrics.logit_thresholds`)."""

    enabled: bool = False
    thresholds: Sequence[float] | None = None


@dataclass(frozen=True)
class MaskOutput:
    """Predicted masks written as PNG into ``folder`` (None: none written), one per image by stem."""

    folder: str | Path | None = None


@dataclass(frozen=True)
class NegativesOptions:
    """Target-free frames (:func:`irstd.data.open_negatives`) whose false alarms are counted too.

    ``split``: ``heldout``, ``train`` or None (all frames); ``targets=False`` scores the negatives alone.
    """

    root: str | Path | None = None
    split: str | None = "heldout"
    targets: bool = True


@dataclass(frozen=True)
class EvalOptions:
    """Every option of one evaluation; ``threshold`` is the probability a pixel must pass to count as target."""

    data: EvalData = field(default_factory=EvalData)
    run: RunMode = field(default_factory=RunMode)
    threshold: float = 0.5
    sweep: SweepOptions = field(default_factory=SweepOptions)
    masks: MaskOutput = field(default_factory=MaskOutput)
    negatives: NegativesOptions = field(default_factory=NegativesOptions)

    @classmethod
    def from_keywords(cls, data: str | Path | None = None, **keywords: Any) -> "EvalOptions":
        """The options from ``evaluate_model``'s flat keywords (``split=``, ``device=``, ``sweep=``,
        ``save_masks=``, ``negatives=``…); an unknown keyword is a ``TypeError`` as in any call."""
        groups: dict[str, dict[str, Any]] = {"data": {"root": data}}
        top: dict[str, Any] = {}
        for key, value in keywords.items():
            if key not in _KEYWORDS:
                raise TypeError(f"evaluate_model() got an unexpected keyword argument {key!r}")
            group, name = _KEYWORDS[key]
            (groups.setdefault(group, {}) if group else top)[name] = value
        parts = {g: _GROUPS[g](**values) for g, values in groups.items()}
        return cls(**parts, **top)

    def replace(self, **changes: Any) -> "EvalOptions":
        """A copy with whole groups (or ``threshold``) replaced."""
        return dataclasses.replace(self, **changes)


_GROUPS = {"data": EvalData, "run": RunMode, "sweep": SweepOptions, "masks": MaskOutput, "negatives": NegativesOptions}
#: flat keyword → (group, field); group None: a field of EvalOptions itself
_KEYWORDS: dict[str, tuple[str | None, str]] = {
    **{f.name: ("data", f.name) for f in dataclasses.fields(EvalData) if f.name != "root"},
    **{f.name: ("run", f.name) for f in dataclasses.fields(RunMode)},
    "threshold": (None, "threshold"),
    "sweep": ("sweep", "enabled"),
    "sweep_thresholds": ("sweep", "thresholds"),
    "save_masks": ("masks", "folder"),
    "negatives": ("negatives", "root"),
    "negatives_split": ("negatives", "split"),
    "targets": ("negatives", "targets"),
}
