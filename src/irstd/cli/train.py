"""``irstd train``: train any registered model; data defaults to the synthetic generator."""

from __future__ import annotations

import argparse

from ..engine.config import load_config, parse_overrides
from ..engine.trainer import fit, load_run_config

# command-line flag -> config key; only flags the user gives override the YAML file
FLAGS = {
    "model": str, "data": str, "split": str, "split_file": str, "mask_dir": str, "epochs": int, "batch_size": int,
    "lr": float, "optimizer": str, "scheduler": str, "crop_size": int, "device": str, "amp": str, "seed": int,
    "out": str, "name": str, "threads": int, "num_workers": int, "val_every": int, "loss": str,
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a model", description="Train a model. Precedence: defaults < --config YAML < flags/--set."
    )
    p.add_argument("--config", help="YAML recipe (see configs/)")
    for key, kind in FLAGS.items():
        p.add_argument(f"--{key.replace('_', '-')}", dest=key, type=kind, default=None, help=f"config key {key}")
    p.add_argument("--skip-invalid", action="store_true", default=None, help="skip unusable image/mask pairs")
    p.add_argument("--channels-last", action="store_true", default=None, help="channels_last memory format")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no progress bar")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="any config key")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run folder exactly where it stopped")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides = {k: getattr(args, k) for k in [*FLAGS, "skip_invalid", "channels_last", "progress"]}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    overrides.update(parse_overrides(args.overrides))
    if args.resume:
        cfg = load_run_config(args.resume)
        cfg.update(overrides, "command line")
    else:
        cfg = load_config(args.config, overrides)
    result = fit(cfg, resume=args.resume)
    print(f"run folder : {result.run_dir}")
    print(f"best       : {result.best_path} (epoch {result.best_metrics.get('epoch')}, val IoU {100 * result.best_metrics.get('val_iou', float('nan')):.2f})")
    print(f"last       : {result.last_path}")
    return 0
