"""A model's operating point: the threshold chosen on validation data, folded into its weights.

A model trained with a recall term (``target_weight``, :func:`irstd.losses.target_balanced_bce`)
ranks pixels well but sits at another operating point than ``sigmoid > 0.5``: its logits are shifted
up by about the log of the weight it gives the target pixels. :func:`choose_operating_point` scores the
model on a validation split over a fine grid of thresholds and takes the one with the best Pd among
those whose false-alarm rate stays within ``max_fa``; :func:`fold_operating_point` writes a checkpoint
whose logit bias is moved by that threshold (:func:`irstd.models.fold_threshold`), so the default 0.5
of every consumer decides as the chosen threshold did. The test split is refused: choosing on it would
make its scores a selection result.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ConfigError
from ..metrics import logit_thresholds, pd_at
from ..models import fold_threshold, load_model, logit_bias, read_checkpoint, save_checkpoint
from .evaluation import evaluate_model

__all__ = ["OperatingPoint", "choose_operating_point", "fold_operating_point"]

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class OperatingPoint:
    """The chosen threshold and what it gave on the data it was chosen on (Pd in %, Fa per 10⁶ pixels)."""

    threshold: float
    logit_offset: float  #: ``logit(threshold)``: subtracted from the logit bias when folded
    max_fa: float
    pd: float
    fa: float
    iou: float
    data: str
    split: str
    images: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_operating_point(model: Any, data: str | Path | None = None, *, max_fa: float, split: str = "val",
                           split_file: str | Path | None = None, mask_dir: str | Path | None = None,
                           synthetic_n: int = 200, device: str = "cpu") -> OperatingPoint:
    """The threshold of best Pd with Fa ≤ ``max_fa`` (×10⁻⁶) on ``split`` (lowest such threshold on ties),
    among logits −14 … 14 a quarter apart (and the largest float32 below 1).

    ``data=None`` scores ``synthetic_n`` generated scenes of ``split`` (as ``irstd evaluate``). Raises
    :class:`~irstd.core.errors.ConfigError` for the test split, or when no threshold meets ``max_fa``.
    """
    if split == "test" and split_file is None:
        raise ConfigError("the operating point is chosen on validation data; the test split is refused")
    if not max_fa > 0:
        raise ConfigError(f"max_fa must be > 0 (false alarms per 10^6 pixels), got {max_fa}")
    grid = logit_thresholds(n=113, span=14.0)
    grid = grid[(grid > 0.0) & (grid < 1.0)]  # a threshold of 0 or 1 has no finite logit to fold
    report = evaluate_model(model, data, split=split, split_file=split_file, mask_dir=mask_dir, device=device,
                            sweep=True, sweep_thresholds=grid, synthetic_n=synthetic_n)
    sw = report.sweep
    assert sw is not None
    pd, threshold = pd_at(max_fa, sw.pd, sw.fa, sw.thresholds)
    if math.isnan(pd):
        raise ConfigError(f"no threshold in the grid keeps Fa <= {max_fa:g}e-6 on {report.data} [{report.split}]")
    i = int(np.flatnonzero(sw.thresholds == threshold)[0])
    return OperatingPoint(threshold=float(threshold), logit_offset=math.log(threshold / (1.0 - threshold)),
                          max_fa=float(max_fa), pd=round(100.0 * float(sw.pd[i]), 2), fa=round(float(sw.fa[i]), 2),
                          iou=round(100.0 * float(sw.results[i].iou), 2), data=report.data, split=report.split,
                          images=len(report.per_image))


def fold_operating_point(src: str | Path, dst: str | Path, *, max_fa: float, data: str | Path | None = None,
                         **kwargs: Any) -> OperatingPoint:
    """Choose the operating point of checkpoint ``src`` (:func:`choose_operating_point`, same arguments)
    and write ``dst``: the same model and metadata with the threshold folded into its logit bias and
    the choice recorded under ``operating_point``."""
    model = load_model(src)
    _, meta = read_checkpoint(src)
    try:
        logit_bias(model)  # fails now, before the evaluation, for a model without a logit layer
    except ValueError as exc:
        raise ConfigError(f"{src}: {exc}") from None
    point = choose_operating_point(model, data, max_fa=max_fa, **kwargs)
    fold_threshold(model, point.threshold)
    record = point.to_dict()
    if "operating_point" in meta:
        record["previous"] = meta["operating_point"]
    save_checkpoint(dst, model, normalization=model.normalization, config=meta.get("config"),
                    metrics=meta.get("metrics"), epoch=meta.get("epoch"), input_range=meta.get("input_range"),
                    operating_point=record)
    log.info("%s: threshold %.6g (logit %+.2f) on %s [%s]: Pd %.2f %%, Fa %.2fe-6; written %s", src,
             point.threshold, point.logit_offset, point.data, point.split, point.pd, point.fa, dst)
    return point
