"""The main job: train SGEM-UNet on synthetic scenes on the CPU, evaluate it, detect on a fresh frame.

Everything runs on built-in data (no downloads) and finishes in a few minutes on two CPU cores.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.device import cpu_supports_bf16
from ..data.synthetic import generate_scene
from ..engine.config import TrainConfig
from ..engine.evaluation import EvalReport, evaluate_model
from ..engine.trainer import FitResult, fit
from ..inference import Prediction, Predictor
from ..models import load_model
from ..visualize import draw_overlay

__all__ = ["DemoResult", "demo_config", "run_demo"]

log = logging.getLogger(__name__)

#: random stream of the detection frame: the data package uses 0 (train), 1 (test), 2 (val)
DETECT_STREAM = 3


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
class DemoResult:
    fit: FitResult
    report: EvalReport
    prediction: Prediction
    overlay_path: Path
    seconds: float


def run_demo(cfg: TrainConfig | None = None, test_images: int = 50) -> DemoResult:
    """Train, evaluate on unseen synthetic scenes, detect on a fresh frame and save an overlay PNG."""
    start = time.perf_counter()
    cfg = cfg or demo_config()
    result = fit(cfg)
    model = load_model(result.best_path)
    amp = cfg.amp if cfg.amp != "auto" else "none"
    report = evaluate_model(model, None, synthetic_n=test_images, synthetic_seed=cfg.synthetic_seed, amp=amp)
    report.save(result.run_dir / "eval-synthetic")
    frame, gt, _ = generate_scene((cfg.synthetic_seed, DETECT_STREAM, 0))
    prediction = Predictor(model, device="cpu", amp=amp).predict(frame)[0]
    overlay_path = result.run_dir / "detect_overlay.png"
    draw_overlay(frame, prediction.targets, prediction.mask, gt=gt, scale=2).save(overlay_path)
    return DemoResult(result, report, prediction, overlay_path, time.perf_counter() - start)
