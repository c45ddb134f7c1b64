"""``irstd operating-point``: choose a checkpoint's threshold on validation data and fold it into the weights."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import ConfigError
from ._common import MODEL_SPEC_HELP, positive_int, ranged


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Score a checkpoint on validation data over a grid of thresholds, take the best Pd whose "
                     "false alarms stay within --max-fa, and write a checkpoint whose default threshold (0.5) "
                     "decides as that threshold did. The test split is refused.")
    p.add_argument("checkpoint", help=MODEL_SPEC_HELP)
    p.add_argument("--max-fa", type=ranged(float, 0, open_low=True), required=True, metavar="FA",
                   help="largest false-alarm rate allowed, in pixels per 10^6, > 0 (e.g. 50)")
    p.add_argument("--data", help="dataset root (default: generated scenes of --split)")
    p.add_argument("--split", default="val", help="split to choose on (default val; test is refused)")
    p.add_argument("--split-file", help="a list of validation image stems instead of --split")
    p.add_argument("--mask-dir", help="folder of corrected masks overriding the dataset's, by stem")
    p.add_argument("--scenes", type=positive_int, default=200, help="generated scenes without --data (default 200)")
    p.add_argument("--out", help="output checkpoint (default: <checkpoint>-op.safetensors beside it)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engine.operating_point import fold_operating_point

    from ..models import resolve_model_spec

    spec = resolve_model_spec(args.checkpoint)
    src = spec.path
    # default: beside a checkpoint file, or in the working folder for shipped weights given by name
    out = Path(args.out) if args.out else (src.with_name(src.stem + "-op.safetensors") if spec.is_local_file
                                           else Path(f"{args.checkpoint}-op.safetensors"))
    if spec.is_local_file and out.resolve() == src.resolve():
        raise ConfigError(f"--out {out} is the checkpoint itself; name another file")
    point = fold_operating_point(args.checkpoint, out, max_fa=args.max_fa, data=args.data, split=args.split,
                                 split_file=args.split_file, mask_dir=args.mask_dir, synthetic_n=args.scenes)
    print(f"threshold {point.threshold:.6g} (logit {point.logit_offset:+.2f}) on {point.data} [{point.split}], "
          f"{point.images} images: Pd {point.pd:.2f} %, Fa {point.fa:.2f}e-6, IoU {point.iou:.2f}")
    print(f"written: {out} (its threshold 0.5 decides as {point.threshold:.6g} did)")
    return 0
