"""``irstd detect``: targets in image files, folders or globs, as JSON/CSV and optional overlays."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.errors import DataError
from ..core.progress import progress_bar
from ..data.io import load_image
from ..inference import Predictor
from ..inference.schema import detections_document, error_record, frame_record, write_detections
from ..inference.sources import expand_inputs
from ..visualize import draw_overlay
from ._common import DETECTIONS_DIR, MODEL_SPEC_HELP, add_device, add_precision, retains_memory


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="detect targets in images, folders or globs")
    p.add_argument("checkpoint", help=MODEL_SPEC_HELP)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image file, folder or glob pattern")
    p.add_argument("--out", default=DETECTIONS_DIR, help=f"output folder (default ./{DETECTIONS_DIR})")
    p.add_argument("--threshold", type=float, default=0.5)
    add_device(p)
    add_precision(p, "dtype of the fast mode (default: the device's best)")
    p.add_argument("--overlay", action="store_true", help="write overlay PNGs (targets boxed)")
    p.add_argument("--prob-maps", action="store_true", help="write probability maps as 16-bit PNGs")
    retains_memory(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    predictor = Predictor.from_checkpoint(
        args.checkpoint, device=args.device, threshold=args.threshold, precision=args.precision,
        amp=None if args.precision == "fp32" else args.amp,
    )
    files = expand_inputs(args.inputs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records, n_errors = [], 0
    for path in progress_bar(files, enabled=len(files) > 1, desc="detect"):
        try:
            frame = load_image(path)
        except DataError as exc:
            n_errors += 1
            records.append(error_record(str(path), str(exc)))
            print(f"skipped {path}: {exc}")
            continue
        pred = predictor.predict(frame)[0]
        records.append(frame_record(str(path), pred))
        if args.overlay:
            draw_overlay(frame, pred.targets, pred.mask).save(out / f"{path.stem}_overlay.png")
        if args.prob_maps:
            Image.fromarray((pred.prob * 65535).round().astype(np.uint16)).save(out / f"{path.stem}_prob.png")
    document = detections_document(records, checkpoint=str(args.checkpoint), threshold=args.threshold,
                                   precision=predictor.label())
    json_path, csv_path = write_detections(out, document)
    n_targets = sum(len(r.get("targets", ())) for r in records)
    print(f"{len(files) - n_errors} frame(s), {n_targets} target(s) -> {json_path}, {csv_path}")
    if n_errors:
        print(f"{n_errors} frame(s) could not be read (listed in detections.json)")
    return 1 if n_errors == len(files) else 0
