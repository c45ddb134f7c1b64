"""``irstd export``: a checkpoint as ONNX (dynamic batch/height/width), checked against PyTorch."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..export import ATOL, OPSET, RTOL, check_onnx_parity, export_onnx
from ..inference import load_predictor_model
from ._common import MODEL_SPEC_HELP, output_beside, parse_size, retains_memory


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX and check it with onnxruntime")
    p.add_argument("checkpoint", help=MODEL_SPEC_HELP)
    p.add_argument("--format", default="onnx", choices=["onnx"], help="export format (default onnx)")
    p.add_argument("--out", help="output file (default: the checkpoint's path with .onnx)")
    p.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    p.add_argument("--check-sizes", nargs="+", default=["256", "320x480"], metavar="SIZE",
                   help="input sizes of the parity check, N or WxH (default: 256 320x480)")
    p.add_argument("--atol", type=float, default=ATOL, help=f"parity tolerance, absolute part (default {ATOL:g})")
    p.add_argument("--rtol", type=float, default=RTOL, help=f"parity tolerance, relative to max|logit| (default {RTOL:g})")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    retains_memory(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sizes = [parse_size(s) for s in args.check_sizes]
    model = load_predictor_model(args.checkpoint, "cpu")
    out = Path(args.out) if args.out else output_beside(args.checkpoint, ".onnx")
    export_onnx(model, out, example_size=sizes[0], opset=args.opset)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MB, opset {args.opset}, dynamic batch/height/width)")
    if args.no_check:
        return 0
    result = check_onnx_parity(model, out, sizes=sizes, atol=args.atol, rtol=args.rtol)
    print(result.summary())
    out.with_suffix(".parity.json").write_text(json.dumps(result.as_dict(), indent=2))
    return 0 if result.passed else 1
