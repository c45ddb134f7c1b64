"""``irstd detect``: targets in image files, folders or globs, as JSON/CSV and optional overlays."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.device import resolve_device
from ..core.distributed import all_gather_object, is_main_process, process_group, rank_device, shard_range
from ..core.errors import DataError
from ..core.progress import progress_bar
from ..data.io import MAX_PIXELS, load_image
from ..inference import Predictor
from ..inference.input_range import INPUT_RANGE_POLICIES
from ..inference.schema import detections_document, error_record, frame_record, write_detections
from ..inference.sources import expand_inputs
from ..visualize import draw_overlay
from ._common import DETECTIONS_DIR, MODEL_SPEC_HELP, add_device, add_precision, int8_model, retains_memory


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help=MODEL_SPEC_HELP + "; or an .onnx file of irstd export (ONNX Runtime)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image file, folder or glob pattern")
    p.add_argument("--out", default=DETECTIONS_DIR, help=f"output folder (default ./{DETECTIONS_DIR})")
    p.add_argument("--threshold", type=float, default=0.5)
    add_device(p)
    add_precision(p, "dtype of the fast mode (default: the device's best)")
    p.add_argument("--overlay", action="store_true", help="write overlay PNGs (targets boxed)")
    p.add_argument("--prob-maps", action="store_true", help="write probability maps as 16-bit PNGs")
    p.add_argument("--input-range", choices=INPUT_RANGE_POLICIES, default="auto",
                   help="frames outside the training range (e.g. 16-bit for an 8-bit model): auto (default) "
                        "scales or stretches them, native uses them as is; see docs/reliability.md")
    p.add_argument("--tile", type=int, default=None, metavar="PIXELS",
                   help="run frames larger than this in overlapping tiles of this size (a multiple of the stride)")
    p.add_argument("--tile-overlap", type=int, default=None, metavar="PIXELS", help="tile overlap (default tile/4)")
    p.add_argument("--max-pixels", type=int, default=None,
                   help=f"refuse frames whose header claims more pixels (default {MAX_PIXELS:,} or $IRSTD_MAX_PIXELS)")
    retains_memory(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with process_group(device=args.device):  # under torchrun: each rank detects a block, rank 0 writes
        return _detect(args)


def _detect(args: argparse.Namespace) -> int:
    predictor = Predictor.from_checkpoint(
        int8_model(args), device=str(rank_device(resolve_device(args.device))), threshold=args.threshold,
        precision=args.precision, amp=None if args.precision == "fp32" else args.amp, input_range=args.input_range,
        tile=args.tile, tile_overlap=args.tile_overlap,
    )
    files = expand_inputs(args.inputs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records, n_errors = [], 0
    mine = [files[i] for i in shard_range(len(files))]  # a contiguous block: gathered in rank order = input order
    for path in progress_bar(mine, enabled=len(mine) > 1 and is_main_process(), desc="detect"):
        try:
            frame = load_image(path, max_pixels=args.max_pixels)
            pred = predictor.predict(frame)[0]
        except (DataError, MemoryError) as exc:
            # one bad or oversized frame costs its own result only; the others are kept
            reason = str(exc) if isinstance(exc, DataError) else f"{path}: out of memory (try --tile 512)"
            n_errors += 1
            records.append(error_record(str(path), reason))
            print(f"skipped {path}: {reason}")
            continue
        records.append(frame_record(str(path), pred))
        if args.overlay:
            draw_overlay(frame, pred.targets, pred.mask).save(out / f"{path.stem}_overlay.png")
        if args.prob_maps:
            Image.fromarray((pred.prob * 65535).round().astype(np.uint16)).save(out / f"{path.stem}_prob.png")
    records = [r for part in all_gather_object(records) for r in part]
    n_errors = sum(all_gather_object(n_errors))
    if not is_main_process():
        return 0
    document = detections_document(records, checkpoint=str(args.checkpoint), threshold=args.threshold,
                                   precision=predictor.label())
    json_path, csv_path = write_detections(out, document)
    n_targets = sum(len(r.get("targets", ())) for r in records)
    print(f"{len(files) - n_errors} frame(s), {n_targets} target(s) -> {json_path}, {csv_path}")
    if n_errors:
        print(f"{n_errors} frame(s) could not be read (listed in detections.json)")
    adjusted = {k: v for k, v in predictor.range_actions.items() if k != "native"}
    if adjusted:
        print("input range: " + ", ".join(f"{v} frame(s) {k}" for k, v in sorted(adjusted.items()))
              + f" (--input-range {args.input_range})")
    return 1 if n_errors == len(files) else 0
