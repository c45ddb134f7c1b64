"""``irstd detect``: targets in image files, folders, globs, TIFF stacks and videos, as JSON Lines
(written as frames finish), JSON and CSV, and optional overlays."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import (DETECTIONS_DIR, MODEL_SPEC_HELP, THRESHOLD_HELP, add_device, add_frame_options, add_max_memory,
                      add_precision, add_verify, positive_int, probability, retains_memory, say)


#: the command's one-line help
HELP = "detect targets in images, folders, globs, TIFF stacks or videos"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``irstd detect`` on parser ``p``; sets ``func``. The library facts the options show are
    imported here, and everything that runs inside :func:`run`, so that importing this module loads no torch."""
    from ..data.io import MAX_PIXELS

    p.add_argument("checkpoint", help=MODEL_SPEC_HELP + "; or an .onnx file of irstd export (ONNX Runtime)")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image file, folder or glob pattern (natural order: 2.png before 10.png), multi-page TIFF "
                        "or video file (needs PyAV: pip install 'sgem-irstd[video]')")
    p.add_argument("--out", default=DETECTIONS_DIR, help=f"output folder (default ./{DETECTIONS_DIR})")
    p.add_argument("--threshold", type=probability, default=0.5, help=THRESHOLD_HELP)
    add_device(p)
    add_verify(p)
    add_precision(p, "dtype of the fast mode (default: the device's best)")
    p.add_argument("--overlay", action="store_true", help="write overlay PNGs OUT/<stem>_overlay.png: targets boxed with their scores, small frames "
                        "enlarged to 256 px (inputs sharing a name in different folders: <folder>__<stem>)")
    p.add_argument("--prob-maps", action="store_true", help="write probability maps as 16-bit PNGs")
    add_frame_options(p)
    p.add_argument("--max-pixels", type=positive_int, default=None,
                   help=f"refuse frames whose header claims more pixels (default {MAX_PIXELS:,} or $IRSTD_MAX_PIXELS)")
    add_max_memory(p)
    p.add_argument("--resume", action="store_true",
                   help="keep the frames OUT/detections.jsonl already holds (an interrupted run) and run the rest")
    retains_memory(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.distributed import process_group

    with process_group(device=args.device):  # under torchrun: each rank detects its share, rank 0 writes
        return _detect(args)


def _detect(args: argparse.Namespace) -> int:
    import sys

    from ..core.device import resolve_device
    from ..core.distributed import all_gather_object, is_main_process, rank_device
    from ..inference import Predictor
    from ..inference.pipeline import detect_frames
    from ..inference.records import JSONL_NAME, RecordWriter, check_resume, finish_detections, start_outputs
    from ..inference.sources import open_source
    from ._common import check_out, int8_model, skip_line, verifier_of, write_stopped_line

    main_rank = is_main_process()
    out = check_out(args.out) if main_rank else Path(args.out)  # a read-only or full --out: one line, before the model
    predictor = Predictor.from_checkpoint(
        int8_model(args), device=str(rank_device(resolve_device(args.device))), threshold=args.threshold,
        precision=args.precision, amp=None if args.precision == "fp32" else args.amp, input_range=args.input_range,
        tile=args.tile, tile_overlap=args.tile_overlap, max_memory=args.max_memory, verifier=verifier_of(args),
        merge_distance=args.merge_distance,
    )
    source = open_source(list(args.inputs), max_pixels=args.max_pixels, admit=predictor.admit)
    writer = None
    if main_rank:  # only rank 0 writes the records; the others' reach it gathered
        if args.resume:
            check_resume(out, checkpoint=str(args.checkpoint), threshold=args.threshold, precision=predictor.label())
        start_outputs(out, resume=args.resume)
        writer = RecordWriter(out / JSONL_NAME, resume=args.resume)
    done = all_gather_object(writer.done if writer is not None else None)[0]
    if done and main_rank:
        say(f"resuming: {len(done)} frame(s) already in {out / JSONL_NAME}")
    interrupted, stopped = False, None
    try:
        for det in _with_progress(detect_frames(predictor, source, skip=done), main_rank):
            try:  # a frame's images first: a frame in the records has its overlay (a resumed run skips it)
                if det.prediction is not None:
                    _write_images(args, out, det)
                if writer is not None:
                    writer.write(det.record)
            except OSError as exc:  # the disk filled up or went read-only: keep what is written, say so
                stopped = exc
                break
            if writer is not None and not det.ok:
                say(skip_line(det.record["file"], det.record["error"]))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if writer is not None:
            writer.close()
    if not main_rank:
        return 0
    try:
        json_path, csv_path, records = finish_detections(
            out, checkpoint=str(args.checkpoint), threshold=args.threshold, precision=predictor.label())
    except OSError as exc:  # the pair is written as one set: the previous pair (if any) stands
        stopped = stopped or exc
    if stopped is not None:
        print(write_stopped_line(stopped, writer.kept, out / JSONL_NAME), file=sys.stderr)
        return 1
    n_errors = sum("error" in r for r in records)
    n_targets = sum(len(r.get("targets", ())) for r in records)
    if interrupted:
        say(f"interrupted: {len(records)} finished frame(s) kept in {out / JSONL_NAME}, {json_path.name} and "
             f"{csv_path.name}; run the same command with --resume to do the rest")
        return 130
    say(f"{len(records) - n_errors} frame(s), {n_targets} target(s) -> {json_path}, {csv_path}")
    if n_errors:
        say(f"{n_errors} frame(s) could not be read (listed in detections.json)")
    adjusted = {k: v for k, v in predictor.range_actions.items() if k != "native"}
    if adjusted:
        say("input range: " + ", ".join(f"{v} frame(s) {k}" for k, v in sorted(adjusted.items()))
             + f" (--input-range {args.input_range})")
    return 1 if records and n_errors == len(records) else 0


def _with_progress(detections, enabled: bool):
    """The detections with a progress bar on a terminal (frame counts: a video's length is unknown)."""
    from ..core.progress import progress_bar

    return progress_bar(detections, enabled=enabled, desc="detect")


def _write_images(args: argparse.Namespace, out: Path, det) -> None:
    """The overlay and probability map of one frame, when asked for (by the rank that ran the frame)."""
    import numpy as np
    from PIL import Image

    from ..core.files import atomic_write
    from ..visualize import draw_overlay, upscale_factor

    stem, pred = det.frame.stem, det.prediction  # stem: unique per input file (a/f.png, b/f.png → a__f, b__f)
    # atomic: a disk that fills up mid-file leaves no half image (the frame is run again on --resume)
    if args.overlay:
        image = det.frame.image
        overlay = draw_overlay(image, pred.targets, pred.mask, scale=upscale_factor(image.shape), scores=True)
        atomic_write(out / f"{stem}_overlay.png", lambda tmp: overlay.save(tmp, format="PNG"))
    if args.prob_maps:
        prob = Image.fromarray((pred.prob * 65535).round().astype(np.uint16))
        atomic_write(out / f"{stem}_prob.png", lambda tmp: prob.save(tmp, format="PNG"))
