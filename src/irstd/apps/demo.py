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
from ..engine.config import TrainConfig
from ..engine.evaluation import EvalReport, evaluate_model
from ..engine.trainer import FitResult, fit
from ..inference import Prediction, Predictor
from ..models import load_model
from ..visualize import draw_overlay
from .demo_defaults import DEMO_WEIGHTS

__all__ = ["DEMO_WEIGHTS", "DemoFrame", "DemoResult", "demo_config", "run_demo", "run_pretrained_demo"]

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


@dataclass
class DemoResult:
    weights: str  #: the shipped name or the trained checkpoint's path
    report: EvalReport
    frames: list[DemoFrame]
    run_dir: Path
    seconds: float
    fit: FitResult | None = None  #: the training run (``irstd demo --train`` only)

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


def run_pretrained_demo(weights: str = DEMO_WEIGHTS, out: str | Path = "runs", *, test_images: int = 50,
                        seed: int = 0, frames: int = 3) -> DemoResult:
    """Load shipped weights by name (or any checkpoint), evaluate on unseen synthetic scenes, detect, overlay."""
    start = time.perf_counter()
    model = load_model(weights)
    run_dir = Path(out) / f"demo-{Path(str(weights)).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True, exist_ok=True)
    report, shots = _evaluate_and_detect(model, run_dir, seed, "none", test_images, frames)
    return DemoResult(str(weights), report, shots, run_dir, time.perf_counter() - start)


def run_demo(cfg: TrainConfig | None = None, test_images: int = 50, frames: int = 3) -> DemoResult:
    """Train, evaluate on unseen synthetic scenes, detect on fresh frames and save overlay PNGs."""
    start = time.perf_counter()
    cfg = cfg or demo_config()
    result = fit(cfg)
    model = load_model(result.best_path)
    amp = cfg.amp if cfg.amp != "auto" else "none"
    report, shots = _evaluate_and_detect(model, result.run_dir, cfg.synthetic_seed, amp, test_images, frames)
    return DemoResult(str(result.best_path), report, shots, result.run_dir, time.perf_counter() - start, fit=result)
