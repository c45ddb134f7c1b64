"""``irstd data``: inspect a dataset folder, or write the synthetic dataset to disk.

* ``irstd data inspect ROOT [--split-file F] [--mask-dir D] [--verify]`` — layout, splits, counts,
  sizes, bit depths, targets and every problem; exit status 1 when problems were found.
* ``irstd data synth OUT --n 500`` — synthetic frames in the plain layout (images/, masks/,
  train.txt, test.txt).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from ..data.synthetic import BACKGROUNDS
from ._common import positive_int, ranged


def _pair(kind: type, low: float) -> Callable[[str], tuple]:
    """argparse type for ``LOW,HIGH`` (or one value, meaning both), each parsed by ``kind`` and at least
    ``low``, with LOW <= HIGH."""
    one = ranged(kind, low)

    def parse(text: str) -> tuple:
        parts = text.replace(",", " ").split()
        if len(parts) not in (1, 2):
            raise argparse.ArgumentTypeError(f"expected 'LOW,HIGH' or one value, got {text!r}")
        lo, hi = one(parts[0]), one(parts[-1])
        if lo > hi:
            raise argparse.ArgumentTypeError(f"{text!r}: LOW is above HIGH: give LOW,HIGH with LOW <= HIGH")
        return (lo, hi)

    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``irstd data inspect`` and ``irstd data synth``."""
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    pi = dsub.add_parser("inspect", help="layout, splits, sizes, bit depths, targets and problems of a dataset")
    pi.add_argument("root", help="dataset folder")
    pi.add_argument("--split-file", default=None, help="inspect only the stems of this list")
    pi.add_argument("--mask-dir", default=None, help="corrected masks that replace masks by stem")
    pi.add_argument("--verify", action="store_true", help="decode every file (finds truncated files; slower)")
    pi.set_defaults(func=run_inspect)

    ps = dsub.add_parser("synth", help="write synthetic frames in the plain layout")
    ps.add_argument("out", help="output folder (created; must be empty unless --overwrite)")
    ps.add_argument("--n", type=positive_int, default=500, help="number of frames, >= 1 (default 500)")
    ps.add_argument("--test-fraction", type=ranged(float, 0, 1), default=0.2, help="share listed in test.txt, 0-1 (default 0.2)")
    ps.add_argument("--seed", type=ranged(int, 0), default=0, help="generator seed, >= 0 (default 0)")
    ps.add_argument("--size", type=ranged(int, 16), default=256, help="square frame size, >= 16 (default 256)")
    ps.add_argument("--targets", type=_pair(int, 0), default=(1, 5), metavar="LO,HI", help="targets per frame, >= 0 (default 1,5)")
    ps.add_argument("--area", type=_pair(int, 1), default=(1, 80), metavar="LO,HI", help="target area in pixels, >= 1 (default 1,80)")
    ps.add_argument("--scr", type=_pair(float, 0), default=(2.0, 12.0), metavar="LO,HI",
                    help="signal-to-clutter ratio range, >= 0 (default 2,12)")
    ps.add_argument("--background", default="random", choices=("random", *BACKGROUNDS))
    ps.add_argument("--clutter", type=ranged(float, 0), default=1.0, help="scale of the non-target clutter count, >= 0 (0: none)")
    ps.add_argument("--bit-depth", type=int, default=8, choices=(8, 16))
    ps.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    ps.set_defaults(func=run_synth)


def run_inspect(args: argparse.Namespace) -> int:
    """Print the inspection report; exit status 1 when problems were found."""
    from ..data import inspect_dataset

    report = inspect_dataset(args.root, split_file=args.split_file, mask_dir=args.mask_dir, verify=args.verify)
    print(report.format())
    return 1 if report.problems else 0


def run_synth(args: argparse.Namespace) -> int:
    """Write the synthetic dataset in the plain layout."""
    from ..data import write_synthetic

    start = time.perf_counter()
    summary = write_synthetic(
        args.out, args.n, seed=args.seed, test_fraction=args.test_fraction, overwrite=args.overwrite,
        size=args.size, n_targets=args.targets, area=args.area, scr=args.scr, background=args.background,
        clutter=args.clutter, bit_depth=args.bit_depth)
    print(f"wrote {summary['train']} train + {summary['test']} test frames to {args.out} "
          f"in {time.perf_counter() - start:.1f} s (plain layout: images/, masks/, train.txt, test.txt)")
    return 0
