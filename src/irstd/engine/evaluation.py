"""Evaluate a checkpoint (or a classical detector) on a dataset under the standard protocol.

Native resolution, padded to the model's stride and cropped back, threshold 0.5 on probabilities,
metrics from :mod:`irstd.metrics`. Nothing here selects or tunes on the data it scores.

With ``sweep`` the target curves run over the logit-scale grid (:func:`irstd.metrics.logit_thresholds`),
pixel AP and ROC AUC are exact over every pixel's score (:mod:`irstd.metrics.ranking`), and the Pd at
Fa = 1e-6 and 1e-5 is read off the grid; with ``negatives`` the false alarms on target-free frames are
counted (:mod:`irstd.engine.negatives`), and with both, the Pd at 0.1 false targets per megapixel.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..core.device import resolve_amp, resolve_device
from ..core.distributed import is_main_process, rank_device
from ..core.errors import ConfigError, DataError
from ..core.files import atomic_write_text
from ..data import build_loader, open_dataset, open_synthetic, pad_collate
from ..data.io import save_mask
from ..inference import ModelRunner, OnnxRunner, load_predictor_model, resolve_mode
from ..inference.predictor import check_int8_runner
from ..metrics import PixelScores, SegMetrics, SegResult, SweepResult, ThresholdSweep, pd_at
from ..visualize import plot_sweep
from .negatives import NegativesReport, evaluate_negatives
from .sharding import gather_concat, gather_merged, shard_dataset
from .trainer import evaluate

__all__ = ["EvalReport", "evaluate_model", "evaluate_checkpoint"]

log = logging.getLogger(__name__)

#: false-alarm levels an operator sets a threshold by: pixel Fa (in 1e-6) and false targets per MP on negatives
FA_LEVELS = (1.0, 10.0)
FALSE_TARGETS_PER_MP_LEVEL = 0.1


@dataclass
class EvalReport:
    """Metrics of one evaluation, with what was evaluated and on what."""

    result: SegResult | None  #: None when only negatives were scored
    model: str
    data: str
    split: str
    n_skipped: int
    threshold: float
    per_image: list[dict[str, Any]] = field(default_factory=list)
    sweep: SweepResult | None = None
    precision: str = "fp32 eager"  #: how the network ran (the run mode's label)
    pixel_ap: float = math.nan  #: exact pixel average precision (with a sweep)
    pixel_roc_auc: float = math.nan  #: exact pixel ROC AUC (with a sweep)
    negatives: NegativesReport | None = None

    def operating_points(self) -> dict[str, dict[str, float]]:
        """Pd at the fixed false-alarm levels (best Pd among grid thresholds within the level) and its threshold."""
        if self.sweep is None:
            return {}
        sw = self.sweep
        out = {}
        for level in FA_LEVELS:
            pd, t = sw.pd_at_fa(level)
            out[f"fa<={level:g}e-6"] = {"pd": pd, "threshold": t}
        ft = self.negatives.false_targets_per_mp_grid() if self.negatives is not None else None
        if ft is not None:
            pd, t = pd_at(FALSE_TARGETS_PER_MP_LEVEL, sw.pd, ft, sw.thresholds)
            out[f"false_targets_per_mp<={FALSE_TARGETS_PER_MP_LEVEL:g}"] = {"pd": pd, "threshold": t}
        return out

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model, "data": self.data, "split": self.split, "threshold": self.threshold,
            "precision": self.precision, "n_skipped_invalid": self.n_skipped,
            "metrics": self.result.as_dict() if self.result is not None else None,
        }
        if self.sweep is not None:
            out["sweep"] = {
                "thresholds": self.sweep.thresholds.tolist(), "pd": self.sweep.pd.tolist(),
                "fa": self.sweep.fa.tolist(), "precision": self.sweep.precision.tolist(),
                "recall": self.sweep.recall.tolist(), "fpr": self.sweep.fpr.tolist(),
                "pixel_ap": self.pixel_ap, "pixel_roc_auc": self.pixel_roc_auc,
                "pd_at": self.operating_points(),
            }
        if self.negatives is not None:
            out["negatives"] = {k: v for k, v in self.negatives.as_dict().items() if k != "frames"}
        return out

    def to_markdown(self) -> str:
        lines = []
        if self.result is not None:
            lines += [
                f"Model: `{self.model}`; data: `{self.data}` [{self.split}]; {self.result.n_images} images, "
                f"{self.n_skipped} skipped as invalid; threshold {self.threshold}; run {self.precision}.",
                "",
                self.result.to_markdown(),
            ]
        if self.sweep is not None:
            lines += ["", f"Pixel AP {self.pixel_ap:.4f}, pixel ROC AUC {self.pixel_roc_auc:.4f} (exact, every score).",
                      "", "Pd at a false-alarm level (best Pd among the sweep's thresholds within it):", "",
                      "| level | Pd (%) | threshold |", "|---|---|---|"]
            lines += [f"| {k} | {100 * v['pd']:.2f} | {v['threshold']:.6g} |" for k, v in self.operating_points().items()]
        if self.negatives is not None:
            lines += ["", self.negatives.to_markdown().rstrip("\n")]
        return "\n".join(lines) + "\n"

    def save(self, out_dir: str | Path) -> list[Path]:
        """Write metrics.json, metrics.md and per_image.csv (sweep.png with a sweep, negatives.* with negatives)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = [out_dir / "metrics.json", out_dir / "metrics.md", out_dir / "per_image.csv"]
        atomic_write_text(written[0], json.dumps(self.as_dict(), indent=2, default=_json_default))
        atomic_write_text(written[1], self.to_markdown())
        if self.per_image:
            keys = list(self.per_image[0])
            rows = [",".join(keys)] + [",".join(str(r[k]) for k in keys) for r in self.per_image]
            atomic_write_text(written[2], "\n".join(rows) + "\n")
        if self.sweep is not None:
            sw = self.sweep
            plot_sweep(sw.fa, sw.pd, sw.recall, sw.precision, out_dir / "sweep.png", title=self.model, ap=self.pixel_ap)
            written.append(out_dir / "sweep.png")
        if self.negatives is not None:
            written += self.negatives.save(out_dir)
        return written


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x)}")


def evaluate_checkpoint(spec: str | Path, data: str | Path | None = None, **kwargs: Any) -> EvalReport:
    """Score a checkpoint file (or a classical detector named ``spec``, or an ``.onnx`` file run by ONNX
    Runtime, e.g. an int8 one) on ``data``; see :func:`evaluate_model`."""
    if str(spec).endswith(".onnx") and Path(spec).is_file():
        return evaluate_model(OnnxRunner(spec), data, **kwargs)
    return evaluate_model(load_predictor_model(spec, "cpu"), data, **kwargs)


def _negatives_only(model: torch.nn.Module, negatives: str | Path, negatives_split: str | None, *, threshold: float,
                    device: str, amp: str | None, precision: str, progress: bool) -> EvalReport:
    """An :class:`EvalReport` of the negatives alone (no target data)."""
    neg = evaluate_negatives(model, negatives, split=negatives_split, threshold=threshold, device=device, amp=amp,
                             precision=precision, progress=progress)
    return EvalReport(None, neg.model, str(negatives), neg.split, 0, threshold, negatives=neg)


def evaluate_model(
    model: torch.nn.Module | OnnxRunner,
    data: str | Path | None = None,
    *,
    split: str = "test",
    split_file: str | Path | None = None,
    mask_dir: str | Path | None = None,
    skip_invalid: bool = False,
    threshold: float = 0.5,
    device: str = "auto",
    amp: str | None = None,
    precision: str = "fp32",
    batch_size: int = 1,
    num_workers: int = 0,
    save_masks: str | Path | None = None,
    sweep: bool = False,
    sweep_thresholds: Sequence[float] | None = None,
    synthetic_n: int = 50,
    synthetic_seed: int = 0,
    progress: bool = False,
    negatives: str | Path | None = None,
    negatives_split: str | None = "heldout",
    targets: bool = True,
) -> EvalReport:
    """Score ``model`` (from :func:`irstd.models.load_model` or a classical detector) on ``data``.

    ``data=None`` scores synthetic scenes of ``split`` (random streams: train 0, test 1, val 2; test is disjoint
    from training and validation).
    The model's stored normalisation is used; a model without one (classical) uses the dataset's.
    ``precision="fp32"`` runs the model itself (under autocast to ``amp`` when one is given);
    ``"fast"`` runs the predictor's fast mode (``irstd.inference``; ``amp`` picks its dtype, default
    the device's best). Scores of record use fp32. ``model`` may be an :class:`OnnxRunner` (CPU; its
    file decides the arithmetic: ``precision`` must be ``fp32`` or, for an int8 file, ``int8``).

    Inside a process group (``torchrun``; :func:`irstd.core.distributed.process_group`) each rank scores
    a contiguous block of the images and the counts are merged in rank order: every rank returns the
    report of one process over all images, in order. Masks are saved by the rank that scored them.

    ``negatives``: a folder of target-free frames (:func:`irstd.data.open_negatives`, part
    ``negatives_split``: ``heldout``, ``train`` or None = all) whose false alarms are counted too, on
    one process (the main one); ``targets=False`` scores the negatives alone. ``sweep_thresholds``:
    the sweep's probability thresholds (default :func:`irstd.metrics.logit_thresholds`).
    """
    check_int8_runner(model, precision)
    onnx = isinstance(model, OnnxRunner)
    if onnx and precision not in ("fp32", "int8"):
        raise ConfigError(f"{model.path}: an ONNX file runs as stored; precision {precision!r} is for checkpoints")
    if not targets:
        if negatives is None:
            raise ConfigError("nothing to evaluate: no target data and no negatives")
        return _negatives_only(model, negatives, negatives_split, threshold=threshold, device=device, amp=amp,
                               precision=precision, progress=progress)
    dev = torch.device("cpu") if onnx else rank_device(resolve_device(device))
    model = model if onnx else model.to(dev).eval()
    dataset, data_name, split_name, skipped = _open_eval_data(
        data, getattr(model, "normalization", None), split=split, split_file=split_file, mask_dir=mask_dir,
        skip_invalid=skip_invalid, synthetic_n=synthetic_n, synthetic_seed=synthetic_seed,
    )
    loader = build_loader(
        shard_dataset(dataset), batch_size, shuffle=False, num_workers=num_workers, collate_fn=pad_collate(model.stride), device=str(dev)
    )
    net, amp_dtype, label = (model, None, model.label()) if onnx else _network(model, dev, precision, amp)
    metrics = SegMetrics(threshold=threshold)
    sweeper = ThresholdSweep(sweep_thresholds) if sweep else None
    ranking = PixelScores() if sweep else None
    names: list[str] = []
    mask_dir_out = Path(save_masks) if save_masks else None
    if mask_dir_out:
        mask_dir_out.mkdir(parents=True, exist_ok=True)

    def on_image(name: str, logits: torch.Tensor, mask: torch.Tensor) -> None:
        names.append(name)
        if sweeper is not None and ranking is not None:
            sweeper.update([logits], [mask])
            ranking.update([logits], [mask])
        if mask_dir_out is not None:
            save_mask(mask_dir_out / f"{name}.png", (torch.sigmoid(logits[0]) > threshold).numpy())

    if len(loader.dataset):  # type: ignore[arg-type]  # a rank may get no image when there are fewer than ranks
        evaluate(net, loader, dev, amp_dtype=amp_dtype, metrics=metrics, on_image=on_image,
                 progress=progress and is_main_process())
    metrics, names = gather_merged(metrics), gather_concat(names)
    sweeper = gather_merged(sweeper) if sweeper is not None else None
    ranking = gather_merged(ranking) if ranking is not None else None
    result = metrics.compute()
    per_image = [
        {"name": n, "iou": c.iou, "n_targets": c.n_targets, "n_detected": c.n_matched_targets, "fa_pixels": c.fa_pixels}
        for n, c in zip(names, metrics.per_image)
    ]
    sweep_result = sweeper.compute() if sweeper is not None else None
    neg = None
    if negatives is not None and is_main_process():
        neg = evaluate_negatives(model, negatives, split=negatives_split, threshold=threshold, device=str(dev), amp=amp,
                                 precision=precision, progress=progress,
                                 thresholds=sweep_result.thresholds if sweep_result is not None else None)
    name = model.metadata.get("model_name") if onnx else None
    return EvalReport(
        result, name or getattr(model, "model_name", type(model).__name__), data_name, split_name, skipped, threshold,
        per_image, sweep_result, label,
        pixel_ap=ranking.average_precision() if ranking is not None else math.nan,
        pixel_roc_auc=ranking.roc_auc() if ranking is not None else math.nan,
        negatives=neg,
    )


def _open_eval_data(data: str | Path | None, norm: tuple[float, float] | None, *, split: str,
                    split_file: str | Path | None, mask_dir: str | Path | None, skip_invalid: bool,
                    synthetic_n: int, synthetic_seed: int):
    """(dataset, data name, split name, images skipped as invalid) of what is scored."""
    if data is None:
        # the generator's random streams stand for the splits (train 0, test 1, val 2); a list of stems
        # has no meaning there, and ignoring it would score other frames than the user named
        if split_file is not None:
            raise DataError(f"{split_file}: a split file needs --data (synthetic scenes are chosen by --split)")
        dataset = open_synthetic(split, synthetic_n, synthetic_seed, normalization=norm)
        data_name, split_name, skipped = "synthetic", f"{split} (seed {synthetic_seed})", 0
    else:
        dataset = open_dataset(
            data, split=split, split_file=split_file, mask_dir=mask_dir, skip_invalid=skip_invalid, normalization=norm
        )
        data_name, split_name, skipped = str(data), str(split_file or split), dataset.skipped
    if len(dataset) == 0:
        raise DataError(f"{data_name} [{split_name}]: no images to evaluate")
    return dataset, data_name, split_name, skipped


def _network(model: torch.nn.Module, dev: torch.device, precision: str, amp: str | None):
    """(callable to score, autocast dtype for the evaluation loop, label of how it runs)."""
    if precision == "fast":
        mode = resolve_mode("fast", dev, amp=amp)
        return ModelRunner(model, dev, mode), None, mode.label()
    if precision == "fp32":
        amp_dtype = resolve_amp(amp or "none", dev)
        label = "fp32 eager" if amp_dtype is None else f"eager under {str(amp_dtype).replace('torch.', '')} autocast"
        return model, amp_dtype, label
    raise ConfigError(f"precision must be fp32 or fast, got {precision!r}")
