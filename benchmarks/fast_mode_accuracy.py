"""Accuracy guard of the fast inference mode: fast vs fp32 masks of a trained checkpoint on a test list.

    python benchmarks/fast_mode_accuracy.py CKPT --data ROOT --split-file F [--device cpu] [--out FILE]

Runs the checkpoint through :class:`irstd.inference.Predictor` twice — ``precision="fp32"`` and
``precision="fast"`` — on every listed image at its original size, and reports the share of pixels
whose mask is the same in both modes, the agreement on predicted-target pixels, and IoU/nIoU/Pd/Fa of
each mode against the ground truth (``irstd.metrics.SegMetrics``). The guard: agreement ≥ 99.9 % and
|ΔIoU| ≤ 0.3 points. Exit status 0 when it holds, 1 otherwise. Writes JSON (``--out``) and prints a summary.

Example (SIRST, the 50/50 test list):

    python benchmarks/fast_mode_accuracy.py runs/sgem_unet/best.safetensors \
        --data ../shared/datasets/SIRST --split-file ../shared/datasets/splits/NUAA-SIRST_50_50/test.txt \
        --out benchmarks/results/fast-mode-accuracy-sirst.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from irstd.bench import environment, fast_mode_agreement
from irstd.data.dataset import open_dataset
from irstd.core.device import resolve_device
from irstd.errors import IRSTDError
from irstd.inference import load_predictor_model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--data", required=True, help="dataset root")
    p.add_argument("--split-file", help="list of image stems (default: the dataset's test split)")
    p.add_argument("--split", default="test")
    p.add_argument("--mask-dir", help="folder of corrected masks overriding the dataset's, by stem")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", choices=["auto", "bf16", "fp16", "none"], help="dtype of the fast mode (default: the device's best)")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--out", help="JSON report")
    args = p.parse_args(argv)
    try:
        device = resolve_device(args.device)
        model = load_predictor_model(args.checkpoint, device)
        norm = getattr(model, "normalization", None)
        ds = open_dataset(args.data, args.split, split_file=args.split_file, mask_dir=args.mask_dir, normalization=norm)
        pairs = (ds.load_raw(i) for i in range(len(ds)))
        result = fast_mode_agreement(model, pairs, normalization=ds.normalization, device=device,
                                     threshold=args.threshold, amp=args.amp)
    except IRSTDError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    if args.out:
        report = {"command": shlex.join(["python", "benchmarks/fast_mode_accuracy.py", *(argv or sys.argv[1:])]),
                  "checkpoint": str(args.checkpoint), "data": str(args.data), "split_file": args.split_file,
                  "environment": environment(device), **result.as_dict()}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"written: {args.out}")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
