"""A detector with and without a candidate verifier, side by side (``irstd evaluate --verify``).

One detector pass per frame; the verifier's decision is applied to the same probability map, so the two
columns differ by the verifier alone. Three kinds of data, each optional:

* a target dataset (``--data``, or generated scenes): IoU, nIoU, Pd, Fa of :class:`~irstd.metrics.SegMetrics`
  on the probability map, with the rejected components set to 0 for the verified column;
* target-free frames (``--negatives``, default its held-out groups): false targets per frame, per megapixel,
  frames with at least one (:mod:`irstd.metrics.false_alarms`);
* point-labelled sequence folders (``--sequence``): per-frame Pd and false targets, a label found by a
  target centroid within 4 px (:func:`irstd.tracking.evaluation.detection_scores`).

Frames run through the :class:`~irstd.inference.Predictor` at native resolution with the model's stored
normalisation (a classical detector: each frame's own statistics, as ``irstd detect``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..core.errors import DataError
from ..core.files import atomic_write_text
from ..core.progress import progress_bar
from ..data import open_dataset, open_negatives, open_synthetic
from ..data.io import load_image
from ..inference import Predictor
from ..inference.sources.files import is_image_file, natural_sorted
from ..inference.verifier_protocol import TargetVerifier, apply_verifier
from ..metrics import NegativeSummary, SegMetrics, SegResult, count_negative, summarize_negatives
from ..tracking.evaluation import GATE, DetectionScores, detection_scores, read_point_labels
from .eval_options import EvalData

__all__ = ["VerifyReport", "sequence_labels", "verify_comparison"]

log = logging.getLogger(__name__)


@dataclass
class VerifyReport:
    """Figures without (``[0]``) and with (``[1]``) the verifier, per kind of data scored."""

    model: str
    verifier: str
    threshold: float
    verifier_threshold: float
    targets: tuple[SegResult, SegResult] | None = None
    targets_name: str = ""
    negatives: tuple[NegativeSummary, NegativeSummary] | None = None
    negatives_name: str = ""
    sequences: dict[str, tuple[DetectionScores, DetectionScores]] = field(default_factory=dict)
    candidates: int = 0  #: targets the verifier scored
    rejected: int = 0
    detector_seconds: float = 0.0
    verifier_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "verifier": self.verifier, "threshold": self.threshold,
                               "verifier_threshold": self.verifier_threshold, "candidates": self.candidates,
                               "rejected": self.rejected, "detector_seconds": round(self.detector_seconds, 2),
                               "verifier_seconds": round(self.verifier_seconds, 2)}
        if self.targets is not None:
            out["targets"] = {"data": self.targets_name, "without": self.targets[0].as_dict(),
                              "with": self.targets[1].as_dict()}
        if self.negatives is not None:
            out["negatives"] = {"data": self.negatives_name, "without": self.negatives[0].as_dict(),
                                "with": self.negatives[1].as_dict()}
        out["sequences"] = {k: {"without": asdict(a), "with": asdict(b)} for k, (a, b) in self.sequences.items()}
        return out

    def to_markdown(self) -> str:
        lines = [f"Model `{self.model}`, threshold {self.threshold}; verifier `{self.verifier}` (threshold "
                 f"{self.verifier_threshold:.4g}): {self.rejected} of {self.candidates} targets rejected; detector "
                 f"{self.detector_seconds:.1f} s, verifier {self.verifier_seconds:.2f} s.", ""]
        if self.targets is not None:
            a, b = self.targets
            lines += [f"Targets: `{self.targets_name}`", "", "| | IoU | nIoU | Pd | Fa (1e-6) | target precision |",
                      "|---|---|---|---|---|---|"]
            for label, r in (("detector", a), ("+ verifier", b)):
                lines.append(f"| {label} | {100 * r.iou:.2f} | {100 * r.niou:.2f} | {100 * r.pd:.2f} | {r.fa:.2f} | "
                             f"{100 * r.target_precision:.2f} |")
            lines.append("")
        if self.negatives is not None:
            lines += [f"Target-free frames: `{self.negatives_name}`", "",
                      "| | frames | false targets | per frame | per MP | frames with ≥ 1 |", "|---|---|---|---|---|---|"]
            for label, s in zip(("detector", "+ verifier"), self.negatives):
                lines.append(f"| {label} | {s.n_frames} | {s.false_targets} | {s.false_targets_per_frame:.3f} | "
                             f"{s.false_targets_per_mp:.3f} | {100 * s.frames_with_false_target:.1f} % |")
            lines.append("")
        for name, pair in self.sequences.items():
            lines += [f"Sequence `{name}` (a label found within {GATE:g} px)", "",
                      "| | frames | Pd | false targets per frame | per MP | frames with ≥ 1 |", "|---|---|---|---|---|---|"]
            for label, s in zip(("detector", "+ verifier"), pair):
                lines.append(f"| {label} | {s.frames} | {s.pd:.2f} % | {s.false_per_frame:.3f} | {s.false_per_mpx:.3f} | "
                             f"{s.frames_with_false:.1f} % |")
            lines.append("")
        return "\n".join(lines)

    def save(self, out_dir: str | Path) -> list[Path]:
        """Write verify.json and verify.md into ``out_dir``."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = [out_dir / "verify.json", out_dir / "verify.md"]
        atomic_write_text(paths[0], json.dumps(self.as_dict(), indent=2, default=float) + "\n")
        atomic_write_text(paths[1], self.to_markdown())
        return paths


def sequence_labels(folder: str | Path) -> Path:
    """The point-label file of a sequence folder: ``<parent>/labels/<name>.txt``, ``<folder>.txt`` or
    ``<folder>/labels.txt`` (the first that exists)."""
    folder = Path(folder)
    for cand in (folder.parent / "labels" / f"{folder.name}.txt", folder.with_suffix(".txt"), folder / "labels.txt"):
        if cand.is_file():
            return cand
    raise DataError(f"{folder}: no point labels found (looked for ../labels/{folder.name}.txt, {folder.name}.txt "
                    "beside it, labels.txt inside)")


class _Timed:
    """The verifier, with the time spent in it and the counts of scored and rejected targets."""

    def __init__(self, verifier: TargetVerifier) -> None:
        self.verifier, self.seconds, self.scored, self.rejected = verifier, 0.0, 0, 0

    def keep(self, frame: np.ndarray, targets: Sequence[Any]) -> np.ndarray:
        t0 = time.perf_counter()
        keep = np.asarray(self.verifier.keep(frame, targets), dtype=bool)
        self.seconds += time.perf_counter() - t0
        self.scored += len(keep)
        self.rejected += int((~keep).sum())
        return keep


def _both(predictor: Predictor, verifier: _Timed, frame: np.ndarray, clock: list[float]):
    """(probability map, verified probability map, targets, kept targets) of one raw frame."""
    t0 = time.perf_counter()
    prob = predictor.probabilities([frame])[0]
    pred = predictor.prediction(prob)
    clock[0] += time.perf_counter() - t0
    mask_v, kept = apply_verifier(verifier, frame, pred.mask, pred.targets, predictor.connectivity,
                                   predictor.merge_distance)
    prob_v = np.where(pred.mask & ~mask_v, np.float32(0), prob)  # rejected components: no target there
    return prob, prob_v, pred.targets, kept


def verify_comparison(model: Any, verifier: TargetVerifier, *, data: EvalData | None = None,
                      negatives: str | Path | None = None, negatives_split: str | None = "heldout",
                      sequences: Sequence[str | Path] = (), threshold: float = 0.5, device: str = "auto",
                      amp: str | None = None, precision: str = "fp32", progress: bool = False,
                      model_name: str = "", verifier_name: str = "") -> VerifyReport:
    """Score ``model`` (a network, classical detector or runner) with and without ``verifier`` on each data
    given (see the module docstring)."""
    predictor = Predictor(model, device=device, threshold=threshold, amp=amp, precision=precision, batch_size=1)
    timed = _Timed(verifier)
    clock = [0.0]
    report = VerifyReport(model_name or getattr(model, "model_name", type(model).__name__),
                          verifier_name or getattr(verifier, "name", type(verifier).__name__), threshold,
                          float(getattr(verifier, "threshold", float("nan"))))
    if data is not None:
        report.targets, report.targets_name = _targets(predictor, timed, data, clock, progress)
    if negatives is not None:
        report.negatives = _negatives(predictor, timed, negatives, negatives_split, clock, progress)
        report.negatives_name = f"{negatives} [{negatives_split or 'all'}]"
    for folder in sequences:
        report.sequences[str(folder)] = _sequence(predictor, timed, Path(folder), clock, progress)
    report.candidates, report.rejected = timed.scored, timed.rejected
    report.detector_seconds, report.verifier_seconds = clock[0], timed.seconds
    return report


def _targets(predictor: Predictor, timed: _Timed, data: EvalData, clock: list[float], progress: bool):
    if data.root is None:
        ds = open_synthetic(data.split, data.synthetic_n, data.synthetic_seed)
        load = lambda i: ds.scene(i)[:2]  # noqa: E731
        name = f"synthetic {data.split} (seed {data.synthetic_seed})"
    else:
        ds = open_dataset(data.root, split=data.split, split_file=data.split_file, mask_dir=data.mask_dir,
                          skip_invalid=data.skip_invalid, normalization=(0.0, 1.0))  # raw frames: no statistics
        load = ds.load_raw
        name = f"{data.root} [{data.split_file or data.split}]"
    if len(ds) == 0:
        raise DataError(f"{name}: no images to evaluate")
    metrics = (SegMetrics(predictor.threshold, inputs="probs"), SegMetrics(predictor.threshold, inputs="probs"))
    for i in progress_bar(range(len(ds)), enabled=progress, desc="targets", leave=False):
        frame, mask = load(i)
        prob, prob_v, _, _ = _both(predictor, timed, frame, clock)
        gt = torch.from_numpy(np.asarray(mask, dtype=np.float32))[None]  # (1, H, W)
        metrics[0].update([torch.from_numpy(prob)[None]], [gt])
        metrics[1].update([torch.from_numpy(prob_v)[None]], [gt])
    return (metrics[0].compute(), metrics[1].compute()), name


def _negatives(predictor: Predictor, timed: _Timed, root: str | Path, split: str | None, clock: list[float],
               progress: bool) -> tuple[NegativeSummary, NegativeSummary]:
    neg = open_negatives(root, split)
    rows: tuple[list, list] = ([], [])
    for i in progress_bar(range(len(neg)), enabled=progress, desc="negatives", leave=False):
        f = neg[i]
        prob, prob_v, _, _ = _both(predictor, timed, neg.load(i), clock)
        for r, p in zip(rows, (prob, prob_v)):
            r.append(count_negative(f.stem, p, group=f.group, threshold=predictor.threshold,
                                    connectivity=predictor.connectivity))
    return summarize_negatives(rows[0]), summarize_negatives(rows[1])


def _sequence(predictor: Predictor, timed: _Timed, folder: Path, clock: list[float], progress: bool):
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder of frames")
    labels = read_point_labels(sequence_labels(folder))  # (F, 2) x, y
    files = [p for p in natural_sorted(folder.iterdir()) if p.is_file() and is_image_file(p)]
    if len(files) != len(labels):
        raise DataError(f"{folder}: {len(files)} frames but {len(labels)} labelled points")
    points: tuple[list, list] = ([], [])
    shape = (0, 0)
    for path in progress_bar(files, enabled=progress, desc=folder.name, leave=False):
        frame = load_image(path)
        shape = frame.shape
        _, _, targets, kept = _both(predictor, timed, frame, clock)
        for pts, ts in zip(points, (targets, kept)):
            pts.append(np.asarray([[t.x, t.y] for t in ts], dtype=np.float64).reshape(-1, 2))
    per_frame = [lab[None] for lab in labels]  # one (1, 2) label per frame
    return detection_scores(points[0], per_frame, shape)[0], detection_scores(points[1], per_frame, shape)[0]


def verify_checkpoint(spec: str | Path, verifier: TargetVerifier, options: Any, sequences: Sequence[str | Path] = (),
                      verifier_name: str = "") -> VerifyReport:
    """:func:`verify_comparison` of a model argument (checkpoint, shipped name, classical detector, ``.onnx``)
    with the data, negatives and run mode of an :class:`~irstd.engine.eval_options.EvalOptions`; the target
    data is scored unless ``options.negatives.targets`` is off (negatives alone)."""
    from ..inference import OnnxRunner, load_predictor_model
    from ..models import resolve_model_spec

    parsed = resolve_model_spec(spec)
    model = OnnxRunner(parsed.path) if parsed.is_onnx and parsed.path.is_file() else load_predictor_model(spec, "cpu")
    run = options.run
    neg = options.negatives
    return verify_comparison(model, verifier, data=options.data if neg.targets else None, negatives=neg.root,
                             negatives_split=neg.split, sequences=sequences, threshold=options.threshold,
                             device=run.device, amp=run.amp, precision=run.precision, progress=run.progress,
                             model_name=str(spec), verifier_name=verifier_name)
