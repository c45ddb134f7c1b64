"""Evaluate a checkpoint (or a classical detector) on a dataset under the standard protocol.

Native resolution, padded to the model's stride and cropped back, threshold 0.5 on probabilities,
metrics from :mod:`irstd.metrics`. Nothing here selects or tunes on the data it scores.

With a sweep the target curves run over the logit-scale grid (:func:`irstd.metrics.logit_thresholds`),
pixel AP and ROC AUC are exact over every pixel's score (:mod:`irstd.metrics.ranking`), and the Pd at
Fa = 1e-6 and 1e-5 is read off the grid; with negatives the false alarms on target-free frames are
counted (:mod:`irstd.engine.false_alarm_report`), and with both, the Pd at 0.1 false targets per megapixel.

The options come grouped (:class:`~irstd.engine.eval_options.EvalOptions`: the data, how the network
runs, the sweep, saved masks, negatives); :func:`evaluate_model` also takes them as flat keywords.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import Dataset

from ..core.device import resolve_amp, resolve_device
from ..core.distributed import is_main_process, rank_device
from ..core.errors import ConfigError, DataError
from ..core.padding import STRIDE_PAD_MODE
from ..data import build_loader, open_dataset, open_synthetic, pad_collate
from ..data.io import save_mask
from ..inference import ModelRunner, OnnxRunner, load_predictor_model, resolve_mode
from ..inference.predictor import check_int8_runner, model_name
from ..metrics import PixelScores, SegMetrics, ThresholdSweep
from ..models import resolve_model_spec
from .eval_loop import run_evaluation
from .eval_memory import fit_evaluation_budget
from .eval_options import EvalData, EvalOptions, MaskOutput, NegativesOptions, RunMode, SweepOptions
from .eval_report import EvalReport
from .false_alarm_report import FalseAlarmReport, false_alarm_report
from .sharding import gather_concat, gather_merged, shard_dataset

__all__ = ["EvalData", "EvalOptions", "EvalReport", "MaskOutput", "NegativesOptions", "RunMode", "SweepOptions",
           "evaluate_checkpoint", "evaluate_model"]

log = logging.getLogger(__name__)

Scorable = torch.nn.Module | OnnxRunner


def evaluate_checkpoint(spec: str | Path, data: str | Path | None = None, *, options: EvalOptions | None = None,
                        **keywords: Any) -> EvalReport:
    """Score a checkpoint file (or a classical detector named ``spec``, or an ``.onnx`` file run by ONNX
    Runtime, e.g. an int8 one) on ``data``; see :func:`evaluate_model`."""
    parsed = resolve_model_spec(spec)
    if parsed.is_onnx and parsed.path.is_file():  # a missing one: the loader's error names it
        return evaluate_model(OnnxRunner(parsed.path), data, options=options, **keywords)
    return evaluate_model(load_predictor_model(spec, "cpu"), data, options=options, **keywords)


def evaluate_model(model: Scorable, data: str | Path | None = None, *, options: EvalOptions | None = None,
                   **keywords: Any) -> EvalReport:
    """Score ``model`` (from :func:`irstd.models.load_model` or a classical detector) on ``data``.

    Options: ``options`` (an :class:`EvalOptions`), or the flat keywords of
    :meth:`EvalOptions.from_keywords` (``split``, ``split_file``, ``mask_dir``, ``skip_invalid``,
    ``synthetic_n``, ``synthetic_seed``, ``batch_size``, ``num_workers``, ``device``, ``amp``,
    ``precision``, ``progress``, ``threshold``, ``sweep``, ``sweep_thresholds``, ``save_masks``,
    ``negatives``, ``negatives_split``, ``targets``) with ``data`` the dataset root.

    ``data=None`` scores synthetic scenes of ``split`` (each split its own random stream,
    :data:`irstd.data.synthetic_dataset.SPLIT_STREAMS`: test is disjoint from training and validation).
    The model's stored normalisation is used; a model without one (classical) uses the dataset's.
    ``precision="fp32"`` runs the model itself (under autocast to ``amp`` when one is given);
    ``"fast"`` runs the predictor's fast mode (``irstd.inference``; ``amp`` picks its dtype, default
    the device's best). Scores of record use fp32. ``model`` may be an :class:`OnnxRunner` (CPU; its
    file decides the arithmetic: ``precision`` must be ``fp32`` or, for an int8 file, ``int8``).

    Inside a process group (``torchrun``; :func:`irstd.core.distributed.process_group`) each rank scores
    a contiguous block of the images and the counts are merged in rank order: every rank returns the
    report of one process over all images, in order. Masks are saved by the rank that scored them.
    Negatives are scored on one process (the main one).
    """
    opts = _resolve_options(data, options, keywords)
    _check_precision(model, opts.run.precision)
    if not opts.negatives.targets:
        return _negatives_only(model, opts)
    onnx = isinstance(model, OnnxRunner)
    dev = torch.device("cpu") if onnx else rank_device(resolve_device(opts.run.device))
    model = model if onnx else model.to(dev).eval()
    scored = _open_eval_data(opts.data, getattr(model, "normalization", None))
    batch, over = fit_evaluation_budget(scored.dataset, model_name(model), opts.run.precision, model.stride,
                                        opts.run.max_memory, opts.data.batch_size, opts.data.skip_invalid)
    if over:
        scored = dataclasses.replace(scored, skipped=scored.skipped + over)
        if len(scored.dataset) == 0:
            raise DataError(f"{scored.name} [{scored.split}]: no images to evaluate within the memory budget")
    opts = opts.replace(data=dataclasses.replace(opts.data, batch_size=batch))
    net, amp_dtype, label = (model, None, model.label()) if onnx else _network(model, dev, opts.run)
    per_image = _PerImage(opts.sweep, opts.masks, opts.threshold)
    metrics = _score(net, scored.dataset, model.stride, dev, amp_dtype, opts, per_image)
    metrics, per_image = gather_merged(metrics), per_image.gathered()
    sweep = per_image.sweeper.compute() if per_image.sweeper is not None else None
    negatives = None
    if opts.negatives.root is not None and is_main_process():
        negatives = _score_negatives(model, opts, str(dev), sweep.thresholds if sweep is not None else None)
    ranking = per_image.ranking
    return EvalReport(
        metrics.compute(), _model_name(model), scored.name, scored.split, scored.skipped, opts.threshold,
        per_image.rows(metrics), sweep, label,
        pixel_ap=ranking.average_precision() if ranking is not None else math.nan,
        pixel_roc_auc=ranking.roc_auc() if ranking is not None else math.nan,
        negatives=negatives,
    )


def _resolve_options(data: str | Path | None, options: EvalOptions | None, keywords: dict[str, Any]) -> EvalOptions:
    """``options`` as given, or built from ``data`` and the flat keywords (not both)."""
    if options is None:
        return EvalOptions.from_keywords(data, **keywords)
    if keywords:
        raise TypeError(f"evaluate_model(): options= and keywords ({', '.join(keywords)}) given together")
    if data is not None:
        options = options.replace(data=dataclasses.replace(options.data, root=data))
    return options


def _check_precision(model: Scorable, precision: str) -> None:
    """An ONNX file runs as stored (fp32 or int8); int8 needs an int8 file."""
    check_int8_runner(model, precision)
    if isinstance(model, OnnxRunner) and precision not in ("fp32", "int8"):
        raise ConfigError(f"{model.path}: an ONNX file runs as stored; precision {precision!r} is for checkpoints")


def _model_name(model: Scorable) -> str:
    """The registered model name (an ONNX runner names it in its file's metadata)."""
    name = model.metadata.get("model_name") if isinstance(model, OnnxRunner) else None
    return name or getattr(model, "model_name", type(model).__name__)


def _negatives_only(model: Scorable, opts: EvalOptions) -> EvalReport:
    """An :class:`EvalReport` of the negatives alone (no target data)."""
    if opts.negatives.root is None:
        raise ConfigError("nothing to evaluate: no target data and no negatives")
    neg = _score_negatives(model, opts, opts.run.device, None)
    return EvalReport(None, neg.model, str(opts.negatives.root), neg.split, 0, opts.threshold, negatives=neg)


def _score_negatives(model: Scorable, opts: EvalOptions, device: str, thresholds: Any) -> FalseAlarmReport:
    """False alarms on the negatives (at the sweep's thresholds too, when there is a sweep)."""
    run = opts.run
    return false_alarm_report(model, opts.negatives.root, split=opts.negatives.split, threshold=opts.threshold,
                              device=device, amp=run.amp, precision=run.precision, progress=run.progress,
                              thresholds=thresholds)


@dataclass
class _Scored:
    """The data an evaluation scores, as its report names it."""

    dataset: Dataset
    name: str
    split: str
    skipped: int  #: images skipped as invalid


def _open_eval_data(data: EvalData, norm: tuple[float, float] | None) -> _Scored:
    """The dataset (or synthetic scenes) ``data`` describes, normalised with ``norm`` when given."""
    if data.root is None:
        # each split is its own random stream of the generator (SPLIT_STREAMS); a list of stems has no
        # meaning there, and ignoring it would score other frames than the user named
        if data.split_file is not None:
            raise DataError(f"{data.split_file}: a split file needs --data (synthetic scenes are chosen by --split)")
        dataset = open_synthetic(data.split, data.synthetic_n, data.synthetic_seed, normalization=norm)
        scored = _Scored(dataset, "synthetic", f"{data.split} (seed {data.synthetic_seed})", 0)
    else:
        dataset = open_dataset(data.root, split=data.split, split_file=data.split_file, mask_dir=data.mask_dir,
                               skip_invalid=data.skip_invalid, normalization=norm)
        scored = _Scored(dataset, str(data.root), str(data.split_file or data.split), dataset.skipped)
    if len(dataset) == 0:
        raise DataError(f"{scored.name} [{scored.split}]: no images to evaluate")
    return scored


def _network(model: torch.nn.Module, dev: torch.device, run: RunMode):
    """(callable to score, autocast dtype for the evaluation loop, label of how it runs)."""
    if run.precision == "fast":
        mode = resolve_mode("fast", dev, amp=run.amp)
        return ModelRunner(model, dev, mode), None, mode.label()
    if run.precision == "fp32":
        amp_dtype = resolve_amp(run.amp or "none", dev)
        label = "fp32 eager" if amp_dtype is None else f"eager under {str(amp_dtype).replace('torch.', '')} autocast"
        return model, amp_dtype, label
    raise ConfigError(f"precision must be fp32 or fast, got {run.precision!r}")


@dataclass
class _PerImage:
    """What is kept of each scored image beyond the counts: its name, the sweep's counts and pixel
    scores (with a sweep), its predicted mask written out (with a mask folder)."""

    sweep_opts: SweepOptions
    masks: MaskOutput
    threshold: float
    names: list[str] = field(default_factory=list)
    sweeper: ThresholdSweep | None = None
    ranking: PixelScores | None = None

    def __post_init__(self) -> None:
        if self.sweep_opts.enabled:
            self.sweeper, self.ranking = ThresholdSweep(self.sweep_opts.thresholds), PixelScores()
        if self.masks.folder:
            Path(self.masks.folder).mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str, logits: torch.Tensor, mask: torch.Tensor) -> None:
        """One image's (1, H, W) logits and mask, at its original size."""
        self.names.append(name)
        if self.sweeper is not None and self.ranking is not None:
            self.sweeper.update([logits], [mask])
            self.ranking.update([logits], [mask])
        if self.masks.folder:
            save_mask(Path(self.masks.folder) / f"{name}.png", (torch.sigmoid(logits[0]) > self.threshold).numpy())

    def gathered(self) -> "_PerImage":
        """Every rank's images merged in rank order (itself alone)."""
        self.names = gather_concat(self.names)
        self.sweeper = gather_merged(self.sweeper) if self.sweeper is not None else None
        self.ranking = gather_merged(self.ranking) if self.ranking is not None else None
        return self

    def rows(self, metrics: SegMetrics) -> list[dict[str, Any]]:
        """One per-image row (name, IoU, targets, detected, false-alarm pixels) per image, in order."""
        return [{"name": n, "iou": c.iou, "n_targets": c.n_targets, "n_detected": c.n_matched_targets,
                 "fa_pixels": c.fa_pixels} for n, c in zip(self.names, metrics.per_image)]


def _score(net: Callable[[torch.Tensor], Any], dataset: Dataset, stride: int, dev: torch.device,
           amp_dtype: torch.dtype | None, opts: EvalOptions, per_image: _PerImage) -> SegMetrics:
    """This rank's block of ``dataset`` through the evaluation loop; returns its (unmerged) counts."""
    loader = build_loader(shard_dataset(dataset), opts.data.batch_size, shuffle=False,
                          num_workers=opts.data.num_workers, collate_fn=pad_collate(stride, STRIDE_PAD_MODE),
                          device=str(dev))
    metrics = SegMetrics(threshold=opts.threshold)
    if len(loader.dataset):  # type: ignore[arg-type]  # a rank may get no image when there are fewer than ranks
        run_evaluation(net, loader, dev, amp_dtype=amp_dtype, metrics=metrics, on_image=per_image,
                       progress=opts.run.progress and is_main_process())
    return metrics
