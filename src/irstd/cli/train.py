"""``irstd train``: train any registered model; data defaults to the synthetic generator."""

from __future__ import annotations

import argparse
import dataclasses
import typing

from ..engine.config import TrainConfig, load_config, parse_overrides

#: config keys that get a flag of their own (every key is reachable through --set); types come from TrainConfig
FLAG_KEYS = ("model", "data", "split", "split_file", "mask_dir", "epochs", "batch_size", "lr", "optimizer", "scheduler",
             "crop_size", "device", "amp", "seed", "out", "name", "threads", "num_workers", "val_every", "loss",
             "init_weights")
#: boolean keys, as switches
SWITCHES = {"skip_invalid": ("--skip-invalid", "skip unusable image/mask pairs"),
            "channels_last": ("--channels-last", "channels_last memory format")}


def _flag_type(key: str) -> type:
    """The scalar type of a TrainConfig field (``int | None`` → int)."""
    hint = typing.get_type_hints(TrainConfig)[key]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = "Train a model. Precedence: defaults < --config YAML < flags/--set."
    p.add_argument("--config", help="YAML recipe (see configs/)")
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for key in FLAG_KEYS:
        p.add_argument(f"--{key.replace('_', '-')}", dest=key, type=_flag_type(key), default=None,
                       help=f"config key {key} (default {defaults[key]})")
    for key, (flag, text) in SWITCHES.items():
        p.add_argument(flag, dest=key, action="store_true", default=None, help=text)
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no progress bar")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="any config key")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run folder exactly where it stopped")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engine.run_folder import load_run_config
    from ..engine.trainer import fit

    overrides = {k: getattr(args, k) for k in [*FLAG_KEYS, *SWITCHES, "progress"]}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    overrides.update(parse_overrides(args.overrides))
    if args.resume:
        cfg = load_run_config(args.resume)
        cfg.update(overrides, "command line")
    else:
        cfg = load_config(args.config, overrides)
    result = fit(cfg, resume=args.resume)  # joins torchrun's process group itself
    if not result.main_process:
        return 0
    print(f"run folder : {result.run_dir}")
    best = result.best_metrics
    print(f"best       : {result.best_path} (epoch {best.get('epoch')}, val IoU {100 * best.get('val_iou', float('nan')):.2f}, "
          f"Pd {100 * best.get('val_pd', float('nan')):.2f} %; {cfg.select_weights} weights, {cfg.select_metric})")
    print(f"last       : {result.last_path}")
    return 0
