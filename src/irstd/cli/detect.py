"""``irstd detect``: targets in image files, folders or globs, as JSON/CSV and optional overlays."""

from __future__ import annotations

import argparse
import csv
import glob
import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..data.io import load_image
from ..errors import DataError
from ..inference import Predictor
from ..visualize import draw_overlay

IMAGE_EXTS = {".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff"}
log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="detect targets in images, folders or globs")
    p.add_argument("checkpoint", help="a .safetensors checkpoint, or a classical detector name")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image file, folder or glob pattern")
    p.add_argument("--out", default="detections", help="output folder (default ./detections)")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fast"],
                   help="fp32 (default) or the device's fast mode (bf16/fp16, channels-last, folded BN)")
    p.add_argument("--amp", default="auto", choices=["auto", "bf16", "fp16", "none"], help="dtype of the fast mode")
    p.add_argument("--overlay", action="store_true", help="write overlay PNGs (targets boxed)")
    p.add_argument("--prob-maps", action="store_true", help="write probability maps as 16-bit PNGs")
    p.set_defaults(func=run)


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files as given, folders' images (sorted), glob matches; nothing found → DataError."""
    files: list[Path] = []
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        elif path.is_file():
            files.append(path)
        elif any(c in spec for c in "*?["):
            files += sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).suffix.lower() in IMAGE_EXTS)
        else:
            raise DataError(f"input not found: {spec}")
    if not files:
        raise DataError(f"no images found in: {' '.join(inputs)}")
    return files


def run(args: argparse.Namespace) -> int:
    predictor = Predictor.from_checkpoint(
        args.checkpoint, device=args.device, threshold=args.threshold, precision=args.precision,
        amp=None if args.precision == "fp32" else args.amp,
    )
    files = expand_inputs(args.inputs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames_out, rows, n_errors = [], [], 0
    for path in tqdm(files, desc="detect", disable=len(files) < 2):
        try:
            frame = load_image(path)
        except DataError as exc:
            n_errors += 1
            frames_out.append({"file": str(path), "error": str(exc)})
            print(f"skipped {path}: {exc}")
            continue
        pred = predictor.predict(frame)[0]
        targets = [t.as_dict() for t in pred.targets]
        frames_out.append({"file": str(path), "height": frame.shape[0], "width": frame.shape[1], "targets": targets})
        for i, t in enumerate(pred.targets):
            x0, y0, x1, y1 = t.bbox
            rows.append([str(path), i, f"{t.x:.2f}", f"{t.y:.2f}", t.area, x0, y0, x1, y1, f"{t.peak:.4f}"])
        if args.overlay:
            draw_overlay(frame, pred.targets, pred.mask).save(out / f"{path.stem}_overlay.png")
        if args.prob_maps:
            Image.fromarray((pred.prob * 65535).round().astype(np.uint16)).save(out / f"{path.stem}_prob.png")
    (out / "detections.json").write_text(json.dumps({"checkpoint": str(args.checkpoint), "threshold": args.threshold, "frames": frames_out}, indent=2))
    with open(out / "detections.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "target", "x", "y", "area", "x0", "y0", "x1", "y1", "peak"])
        writer.writerows(rows)
    n_ok = len(files) - n_errors
    print(f"{n_ok} frame(s), {len(rows)} target(s) -> {out / 'detections.json'}, {out / 'detections.csv'}")
    if n_errors:
        print(f"{n_errors} frame(s) could not be read (listed in detections.json)")
    return 1 if n_errors == len(files) else 0
