"""``irstd demo``: the main job on built-in synthetic data (train, evaluate, detect, overlay)."""

from __future__ import annotations

import argparse

import torch

from ..apps.demo import demo_config, run_demo
from ..core.profiling import count_macs, count_params
from ..models import create_model
from ._common import RUNS_DIR


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train SGEM-UNet on synthetic scenes, evaluate, detect (a few CPU minutes)")
    p.add_argument("--model", default="sgem_unet", help="registered model (default sgem_unet)")
    p.add_argument("--epochs", type=int, default=12, help="training epochs of 240 scenes (default 12)")
    p.add_argument("--scenes", type=int, default=None, help="training scenes (default 240; fewer for a quick check)")
    p.add_argument("--out", default=RUNS_DIR, help=f"parent of the run folder (default ./{RUNS_DIR})")
    p.add_argument("--test-scenes", type=int, default=50, help="unseen synthetic test scenes (default 50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = demo_config(args.out, args.epochs, args.model)
    cfg.update({"seed": args.seed, "synthetic_seed": args.seed}, "command line")
    if args.scenes:
        cfg.update({"synthetic_train": args.scenes, "synthetic_val": max(2, args.scenes // 10)}, "command line")
    model = create_model(args.model)
    print(f"model {args.model}: {count_params(model) / 1e6:.3f} M params, "
          f"{count_macs(model, (1, 1, 256, 256)) / 1e9:.2f} GMACs at 256x256")
    print(f"training {cfg.epochs} epoch(s) on {cfg.synthetic_train} synthetic scenes "
          f"({cfg.crop_size}px crops, amp={cfg.amp}, channels_last={cfg.channels_last}) ...")
    res = run_demo(cfg, test_images=args.test_scenes)
    r = res.report.result
    print()
    print(f"## Test: {r.n_images} unseen synthetic scenes ({r.n_targets} targets), threshold 0.5")
    print(r.to_markdown())
    print()
    print(f"detection on a fresh frame: {len(res.prediction.targets)} target(s)")
    for t in res.prediction.targets:
        print(f"  x={t.x:.1f} y={t.y:.1f} area={t.area} peak={t.peak:.2f}")
    print(f"run folder   : {res.fit.run_dir}")
    print(f"checkpoint   : {res.fit.best_path}")
    print(f"overlay      : {res.overlay_path}")
    print(f"total time   : {res.seconds / 60:.1f} min")
    return 0
