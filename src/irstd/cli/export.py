"""``irstd export``: a checkpoint as ONNX (dynamic batch/height/width), checked against PyTorch."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..export.defaults import ATOL, MAX_OPSET, MIN_OPSET, OPSET, RTOL
from ._common import MODEL_SPEC_HELP, add_calibration, calibration_spec, output_beside, parse_size, ranged, retains_memory


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help=MODEL_SPEC_HELP)
    p.add_argument("--format", default="onnx", choices=["onnx"], help="export format (default onnx)")
    p.add_argument("--out", help="output file (default: the checkpoint's path with .onnx, or .int8.onnx)")
    p.add_argument("--int8", action="store_true",
                   help="static int8 (QDQ, per-channel weights) calibrated on --calib training frames (docs/int8.md)")
    add_calibration(p, "with --int8: ")
    p.add_argument("--full-range", action="store_true",
                   help="with --int8: 8-bit weights instead of 7-bit (only for CPUs with VNNI; docs/int8.md)")
    p.add_argument("--opset", type=ranged(int, MIN_OPSET, MAX_OPSET), default=OPSET,
                   help=f"ONNX opset, {MIN_OPSET}-{MAX_OPSET} (default {OPSET})")
    p.add_argument("--check-sizes", nargs="+", default=["256", "320x480"], metavar="SIZE",
                   help="input sizes of the parity check, N or WxH (default: 256 320x480)")
    p.add_argument("--atol", type=ranged(float, 0), default=ATOL, help=f"parity tolerance, absolute part (default {ATOL:g})")
    p.add_argument("--rtol", type=ranged(float, 0), default=RTOL, help=f"parity tolerance, relative to max|logit| (default {RTOL:g})")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    retains_memory(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export import check_onnx_parity, export_onnx
    from ..export.quantize import export_int8
    from ..inference import load_predictor_model
    from ..inference.backends.onnx import require_onnxruntime

    sizes = [parse_size(s) for s in args.check_sizes]
    model = load_predictor_model(args.checkpoint, "cpu")
    out = Path(args.out) if args.out else output_beside(args.checkpoint, ".int8.onnx" if args.int8 else ".onnx")
    if args.int8:
        require_onnxruntime()
        spec = calibration_spec(args)
        export_int8(model, out, spec, example_size=sizes[0], opset=args.opset, reduce_range=not args.full_range)
        print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MB, int8 QDQ, calibrated on {spec.frames} frame(s) of "
              f"{spec.data} [{spec.split_file or spec.split}])")
    else:
        export_onnx(model, out, example_size=sizes[0], opset=args.opset)
        print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MB, opset {args.opset}, dynamic batch/height/width)")
    if args.no_check:
        return 0
    result = check_onnx_parity(model, out, sizes=sizes, atol=args.atol, rtol=args.rtol)
    if args.int8:  # int8 is not within fp32 tolerances: the file runs on each size; accuracy is measured on frames
        print(result.int8_summary())
        out.with_suffix(".parity.json").write_text(json.dumps(result.as_dict(), indent=2))
        return 0
    print(result.summary())
    out.with_suffix(".parity.json").write_text(json.dumps(result.as_dict(), indent=2))
    return 0 if result.passed else 1
