"""The main job: a trained detector on built-in synthetic scenes: evaluate, detect on fresh frames, overlay.

By default the model is shipped weights (:data:`DEMO_WEIGHTS`, trained on generated scenes: no
download, no training, well under two minutes on two CPU cores). ``train=True`` (``irstd demo
--train``) trains SGEM-UNet on the CPU first, as the recipe :func:`demo_config` says, and uses that.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch.nn as nn

from ..core.components import connected_components
from ..core.device import cpu_supports_bf16
from ..data import DETECT_STREAM
from ..data.synthetic import generate_scene
from ..data.synthetic_sequence import SyntheticSequence, generate_sequence
from ..engine.config import TrainConfig
from ..engine.evaluation import EvalReport, evaluate_model
from ..engine.trainer import FitResult, fit
from ..inference import Prediction, Predictor
from ..models import load_model
from ..tracking import Tracker
from ..tracking.evaluation import match
from ..visualize import draw_overlay, draw_tracks
from .demo_defaults import DEMO_WEIGHTS

__all__ = ["DEMO_WEIGHTS", "DemoFrame", "DemoResult", "TrackDemo", "TrackedFrame", "demo_config", "demo_sequence",
           "run_demo", "run_pretrained_demo", "track_demo"]

log = logging.getLogger(__name__)



def demo_config(out: str | Path = "runs", epochs: int = 12, model: str = "sgem_unet") -> TrainConfig:
    """The demo's training recipe: small target-centred crops, bf16 + channels_last where the CPU has bf16."""
    fast = cpu_supports_bf16()
    return TrainConfig(
        model=model,
        data=None,
        loss="softiou_bce",  # SoftIoU alone needs long schedules; BCE makes a few-minute run usable
        synthetic_train=240,
        synthetic_val=24,
        crop_size=128,
        target_crop_prob=0.5,
        epochs=epochs,
        batch_size=8,
        optimizer="adamw",
        lr=2e-3,
        weight_decay=1e-4,
        scheduler="cosine",
        warmup_epochs=1,
        min_lr=1e-4,
        amp="bf16" if fast else "none",
        channels_last=fast,
        val_every=max(1, epochs // 3),
        out=str(out),
        name=f"demo-{model}-{time.strftime('%Y%m%d-%H%M%S')}",
    )


@dataclass
class DemoFrame:
    """Detections on one fresh frame, each matched against the ground truth."""

    prediction: Prediction
    hits: list[bool]  #: per detected target: does it overlap a true target?
    n_true: int  #: true targets in the frame
    n_found: int  #: true targets overlapped by a detection
    overlay_path: Path


@dataclass(frozen=True)
class TrackedFrame:
    """One frame of the tracking demo: truth, raw detections and confirmed targets, matched within 4 px."""

    targets: int  #: true targets drawn in the frame
    raw: int  #: raw detections
    raw_found: int  #: true targets a raw detection lies within the gate of
    confirmed: int  #: confirmed targets (detected or coasting)
    confirmed_found: int
    cut: bool  #: the tracker saw a scene cut before this frame

    @property
    def raw_false(self) -> int:
        return self.raw - self.raw_found

    @property
    def confirmed_false(self) -> int:
        return self.confirmed - self.confirmed_found


@dataclass
class TrackDemo:
    """The detector and the tracker over a generated sequence (:func:`demo_sequence`)."""

    frames: list[TrackedFrame]
    overlay_path: Path
    description: str

    def totals(self) -> dict[str, float]:
        """Pd (%) and false targets per frame, raw and confirmed (online: confirmation delay counted)."""
        n, labels = len(self.frames), max(1, sum(f.targets for f in self.frames))
        return {"raw_pd": 100 * sum(f.raw_found for f in self.frames) / labels,
                "raw_false": sum(f.raw_false for f in self.frames) / n,
                "confirmed_pd": 100 * sum(f.confirmed_found for f in self.frames) / labels,
                "confirmed_false": sum(f.confirmed_false for f in self.frames) / n}


@dataclass
class DemoResult:
    weights: str  #: the shipped name or the trained checkpoint's path
    report: EvalReport
    frames: list[DemoFrame]
    run_dir: Path
    seconds: float
    fit: FitResult | None = None  #: the training run (``irstd demo --train`` only)
    track: TrackDemo | None = None  #: the tracking part (None with ``track_frames=0``)

    @property
    def overlay_path(self) -> Path:
        return self.frames[0].overlay_path


def _match(pred: Prediction, gt: np.ndarray) -> tuple[list[bool], int, int]:
    """(hit per detection, true targets, true targets found), by pixel overlap of components."""
    true, detected = connected_components(gt), connected_components(pred.mask)
    # the predictor's targets are these components in label order (same labelling, 8-connected)
    hits = [bool(gt[detected.labels == i + 1].any()) for i in range(detected.n)]
    found = len(set(np.unique(true.labels[pred.mask]).tolist()) - {0})
    return hits, true.n, found


def _evaluate_and_detect(model: nn.Module, run_dir: Path, seed: int, amp: str, test_images: int,
                         n_frames: int) -> tuple[EvalReport, list[DemoFrame]]:
    """Score on unseen synthetic test scenes, then detect on ``n_frames`` fresh frames with overlays."""
    report = evaluate_model(model, None, synthetic_n=test_images, synthetic_seed=seed, amp=amp)
    report.save(run_dir / "eval-synthetic")
    predictor = Predictor(model, device="cpu", amp=amp)
    frames = []
    for i in range(n_frames):
        frame, gt, _ = generate_scene((seed, DETECT_STREAM, i))
        pred = predictor.predict(frame)[0]
        hits, n_true, n_found = _match(pred, gt)
        path = run_dir / ("detect_overlay.png" if i == 0 else f"detect_overlay_{i}.png")
        draw_overlay(frame, pred.targets, pred.mask, gt=gt, scale=2).save(path)
        frames.append(DemoFrame(pred, hits, n_true, n_found, path))
    return report, frames


#: the tracking demo's sequence: 3 moving targets among static and flickering clutter, a pan, a cut, a missed frame
SEQUENCE = dict(size=(128, 160), n_targets=3, n_static=8, n_flicker=6, pan=(2, 1), dropouts=((1, 12),),
                amplitude=(40, 60))


def demo_sequence(n_frames: int = 32, seed: int = 0) -> SyntheticSequence:
    """The tracking demo's generated sequence (:data:`SEQUENCE`), with a scene cut at three quarters."""
    return generate_sequence(n_frames=n_frames, cut_at=(3 * n_frames) // 4 if n_frames >= 8 else None, seed=seed,
                             **SEQUENCE)


def track_demo(predictor: Predictor, run_dir: Path, n_frames: int = 32, seed: int = 0) -> TrackDemo:
    """Detect in every frame of :func:`demo_sequence`, track, and count raw against confirmed targets per frame;
    writes ``track_overlay.png`` (the frame before the cut: raw detections red, confirmed targets green with
    their id, their last positions as a yellow trail)."""
    seq = demo_sequence(n_frames, seed)
    tracker = Tracker()
    rows: list[TrackedFrame] = []
    shown = (seq.cuts[0] - 1) if seq.cuts else len(seq.frames) - 1  # the overlay: the frame before the cut
    trails: dict[int, list[tuple[float, float]]] = {}
    for i, (frame, truth) in enumerate(zip(seq.frames, seq.targets)):
        pred = predictor.predict(frame)[0]
        r = tracker.update(pred.targets, frame=frame)
        raw_found, _ = match(r.detections[:, :2], truth[:, 1:])
        conf_found, _ = match(np.array([(t.x, t.y) for t in r.targets]).reshape(-1, 2), truth[:, 1:])
        rows.append(TrackedFrame(len(truth), len(r.detections), int(raw_found.sum()), len(r.targets),
                                 int(conf_found.sum()), r.cut))
        if i > shown:
            continue
        for t in r.targets:
            trails.setdefault(t.id, []).append((t.x, t.y))
        if i == shown:
            confirmed = [(t.id, t.x, t.y, None if t.predicted else pred.targets[t.detection].bbox) for t in r.targets]
            recent = {t.id: trails[t.id][-10:] for t in r.targets}
            image = draw_tracks(frame, [t.bbox for t in pred.targets], confirmed, recent, scale=3)
    path = run_dir / "track_overlay.png"
    image.save(path)
    pan = SEQUENCE["pan"]
    text = (f"{len(seq.frames)} generated {SEQUENCE['size'][1]}x{SEQUENCE['size'][0]} frames: {SEQUENCE['n_targets']} "
            f"moving targets, {SEQUENCE['n_static']} static and {SEQUENCE['n_flicker']} flickering clutter spots, "
            f"camera pan ({pan[0]}, {pan[1]}) px/frame, target 1 missed in frame 12"
            + (f", scene cut at frame {seq.cuts[0]}" if seq.cuts else ""))
    return TrackDemo(rows, path, text)


def run_pretrained_demo(weights: str = DEMO_WEIGHTS, out: str | Path = "runs", *, test_images: int = 50,
                        seed: int = 0, frames: int = 3, track_frames: int = 32) -> DemoResult:
    """Load shipped weights by name (or any checkpoint), evaluate on unseen synthetic scenes, detect, overlay."""
    start = time.perf_counter()
    model = load_model(weights)
    run_dir = Path(out) / f"demo-{Path(str(weights)).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True, exist_ok=True)
    report, shots = _evaluate_and_detect(model, run_dir, seed, "none", test_images, frames)
    track = track_demo(Predictor(model, device="cpu"), run_dir, track_frames, seed) if track_frames else None
    return DemoResult(str(weights), report, shots, run_dir, time.perf_counter() - start, track=track)


def run_demo(cfg: TrainConfig | None = None, test_images: int = 50, frames: int = 3,
             track_frames: int = 32) -> DemoResult:
    """Train, evaluate on unseen synthetic scenes, detect on fresh frames and save overlay PNGs."""
    start = time.perf_counter()
    cfg = cfg or demo_config()
    result = fit(cfg)
    model = load_model(result.best_path)
    amp = cfg.amp if cfg.amp != "auto" else "none"
    report, shots = _evaluate_and_detect(model, result.run_dir, cfg.synthetic_seed, amp, test_images, frames)
    track = (track_demo(Predictor(model, device="cpu", amp=amp), result.run_dir, track_frames, cfg.synthetic_seed)
             if track_frames else None)
    return DemoResult(str(result.best_path), report, shots, result.run_dir, time.perf_counter() - start, fit=result,
                      track=track)
