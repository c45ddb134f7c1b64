"""Accuracy guard of int8: int8 (ONNX Runtime, static QDQ) vs fp32 (PyTorch eager) of a trained checkpoint.

    python benchmarks/int8/accuracy.py CKPT [--data ../shared/datasets/SIRST]
        [--test-list ../shared/datasets/splits/NUAA-SIRST_50_50/test.txt]
        [--calib-list ../shared/datasets/splits/NUAA-SIRST_50_50/train.txt] [--calib-frames 32]
        [--mask-dir ../shared/datasets/SIRST-corrections/masks] [--out benchmarks/results/int8/accuracy-NAME]

Quantises the checkpoint with calibration frames from the training list (``irstd.export.export_int8``; the
test list is passed as a list to refuse, so no calibration frame can come from it), then runs both on every
test frame at its native size (``irstd.bench.mode_agreement``): pixel agreement of the masks, and IoU, nIoU,
Pd and Fa of each against the ground truth, with the moves. The guard (issue #19): |ΔIoU| ≤ 1.0 and
|ΔPd| ≤ 1.0 points. Exit status 0 when it holds, 1 otherwise. Writes ``OUT.json`` and ``OUT.md``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

from irstd.bench import INT8_MAX_IOU_DELTA_POINTS, INT8_MAX_PD_DELTA_POINTS, environment, int8_guard, mode_agreement
from irstd.data.dataset import open_dataset
from irstd.errors import IRSTDError
from irstd.export.quantize import CalibrationSpec, export_int8
from irstd.inference import Predictor, load_predictor_model

DATA = "../shared/datasets"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--data", default=f"{DATA}/SIRST")
    p.add_argument("--test-list", default=f"{DATA}/splits/NUAA-SIRST_50_50/test.txt")
    p.add_argument("--calib-list", default=f"{DATA}/splits/NUAA-SIRST_50_50/train.txt")
    p.add_argument("--calib-frames", type=int, default=32)
    p.add_argument("--mask-dir", default=f"{DATA}/SIRST-corrections/masks",
                   help="corrected masks by stem (ignored when the folder does not exist)")
    p.add_argument("--limit", type=int, help="only the first N test frames (smoke tests)")
    p.add_argument("--threads", type=int)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--full-range", action="store_true", help="8-bit weights (reduce_range off; for VNNI CPUs)")
    p.add_argument("--out", help="output path without extension (default benchmarks/results/int8/accuracy-<stem>)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    mask_dir = args.mask_dir if args.mask_dir and Path(args.mask_dir).is_dir() else None
    t0 = time.perf_counter()
    try:
        model = load_predictor_model(args.checkpoint, "cpu")
        calib = CalibrationSpec(args.data, split_file=args.calib_list, frames=args.calib_frames,
                                exclude=(args.test_list,))
        with tempfile.TemporaryDirectory(prefix="irstd-int8-acc-") as work:
            q = export_int8(model, Path(work) / "model.int8.onnx", calib, reduce_range=not args.full_range)
            norm = getattr(model, "normalization", None)
            ds = open_dataset(args.data, "test", split_file=args.test_list, mask_dir=mask_dir, normalization=norm)
            n = min(len(ds), args.limit) if args.limit else len(ds)
            pairs = (ds.load_raw(i) for i in range(n))
            ref = Predictor(model, ds.normalization, device="cpu", threshold=args.threshold, precision="fp32", batch_size=1)
            int8 = Predictor.from_onnx(q, ds.normalization, threshold=args.threshold, precision="int8", batch_size=1)
            result = mode_agreement(ref, int8, pairs, threshold=args.threshold)
    except IRSTDError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    passed = int8_guard(result)
    d = result.as_dict()
    moves = {k: d["fast"][k] - d["fp32"][k] for k in ("iou", "niou", "pd", "fa") if k in d["fp32"]}
    command = shlex.join(["python", "benchmarks/int8/accuracy.py", *(sys.argv[1:] if argv is None else argv)])
    report = {"command": command, "checkpoint": str(args.checkpoint), "model": getattr(model, "model_name", None),
              "data": args.data, "test_list": args.test_list, "mask_dir": mask_dir, "calibration": calib.describe(),
              "limit": args.limit, "environment": environment(torch.device("cpu")), **d, "int8": d["fast"],
              "moves": moves, "int8_guard": {"passed": passed, "max_iou_delta_points": INT8_MAX_IOU_DELTA_POINTS,
                                             "max_pd_delta_points": INT8_MAX_PD_DELTA_POINTS},
              "seconds": time.perf_counter() - t0}
    del report["fast"], report["passed"], report["limits"]  # the fast-mode guard's names: not this guard's
    f32, i8 = d["fp32"], d["fast"]
    md = "\n".join([
        f"# int8 vs fp32: {report['model']} ({args.checkpoint})", "", f"Command: `{command}`", "",
        f"{result.n_images} test frames at native size ({args.test_list}); calibration: {calib.frames} frames of "
        f"{args.calib_list}; int8 = {result.fast_mode}.", "",
        f"Pixel agreement {100 * result.pixel_agreement:.4f} % (agreement on predicted-target pixels "
        f"{100 * result.positive_agreement:.2f} %), max |Δp| {result.max_prob_diff:.3g}.", "",
        "| metric | fp32 | int8 | move |", "|---|---:|---:|---:|",
        *(f"| {k} | {100 * f32[k]:.2f} | {100 * i8[k]:.2f} | {100 * moves[k]:+.2f} points |" for k in ("iou", "niou", "pd")),
        f"| Fa (1e-6) | {f32['fa']:.2f} | {i8['fa']:.2f} | {moves['fa']:+.2f} |", "",
        f"Guard (|ΔIoU| ≤ {INT8_MAX_IOU_DELTA_POINTS:g}, |ΔPd| ≤ {INT8_MAX_PD_DELTA_POINTS:g} points): "
        f"{'PASSED' if passed else 'FAILED'}.", ""])
    out = Path(args.out or f"benchmarks/results/int8/accuracy-{Path(args.checkpoint).parent.name or 'model'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(md)
    print(md)
    print(f"written: {out}.json, {out}.md")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
