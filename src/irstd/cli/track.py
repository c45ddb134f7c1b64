"""``irstd track``: detect and track targets over a video, frame folder, glob or TIFF stack; confirmed targets
beside the raw detections, as JSON Lines (as frames finish), a MOT-challenge CSV, detections JSON/CSV, an
optional overlay and a summary."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import (MODEL_SPEC_HELP, THRESHOLD_HELP, add_device, add_frame_options, add_max_memory, add_precision,
                      add_verify, positive_int, probability, ranged, retains_memory, say)

#: default output folder of ``irstd track``
TRACKS_DIR = "tracks"


def add_tracker_options(p: argparse.ArgumentParser) -> None:
    """The main :class:`~irstd.tracking.TrackerParams` fields as options (defaults: the library's)."""
    from ..tracking import TrackerParams
    from ..tracking.camera import MODELS

    d = TrackerParams()
    g = p.add_argument_group("tracker (docs/tracking.md)")
    g.add_argument("--gate", type=ranged(float, 0.5, 100), default=d.gate,
                   help=f"largest distance in px between a track's prediction and its detection (default {d.gate:g})")
    g.add_argument("--birth-hits", type=ranged(int, 1, 62), default=d.birth_hits, metavar="M",
                   help=f"a track is established after M detections … (default {d.birth_hits})")
    g.add_argument("--birth-window", type=ranged(int, 1, 62), default=d.birth_window, metavar="N",
                   help=f"… within N frames (default {d.birth_window})")
    g.add_argument("--max-misses", type=ranged(int, 0, 1000), default=d.max_misses, metavar="K",
                   help=f"an established track dies after K misses in a row (default {d.max_misses})")
    g.add_argument("--min-displacement", type=ranged(float, 0, 1000), default=d.min_displacement, metavar="PX",
                   help="confirmation: a track must move this far in the scene along a line within "
                        f"--motion-window frames (default {d.min_displacement:g})")
    g.add_argument("--motion-window", type=ranged(int, 2, 1000), default=d.motion_window,
                   help=f"frames of that line (default {d.motion_window})")
    g.add_argument("--early-step", type=ranged(float, 0, 1000), default=d.early_step, metavar="PX",
                   help="or step this far in the scene between a new track's first two frames: a target at its second "
                        f"detection (0: off; default {d.early_step:g})")
    g.add_argument("--no-birth-image", action="store_true",
                   help="a track with one detection takes its second only by the step in the scene, not also by the "
                        "step in the image (which follows a target moving against a panning camera)")
    g.add_argument("--hover-frames", type=ranged(int, 0, 100000), default=d.hover_frames,
                   help="or be detected still for this many frames in a row with a high score (0: never; "
                        f"default {d.hover_frames})")
    g.add_argument("--release-after", type=ranged(int, 0, 100000), default=d.release_after, metavar="FRAMES",
                   help="detected frames in a row failing both confirmation tests after which a confirmed track is "
                        f"a target no more (0: never; default {d.release_after})")
    g.add_argument("--coast", type=ranged(int, 0, 1000), default=d.coast,
                   help=f"misses a confirmed track is reported at its predicted position (default {d.coast})")
    g.add_argument("--no-compensate", action="store_true", help="no camera-shift estimate and no scene cuts")
    g.add_argument("--camera", choices=MODELS, default=d.camera,
                   help="camera model of the compensation: translation (a shift per frame), similarity (also zoom and "
                        f"rotation), affine (also shear: a pan in perspective) (default {d.camera})")
    g.add_argument("--min-warp", type=ranged(float, 0, 1000), default=d.min_warp, metavar="PX",
                   help="beyond translation: a frame whose fitted zoom/rotation/shear moves no frame corner this far "
                        f"keeps the shift alone (default {d.min_warp:g})")


def tracker_params(args: argparse.Namespace):
    """The :class:`~irstd.tracking.TrackerParams` of the options (their cross-checks raise one line)."""
    from ..tracking import TrackerParams

    return TrackerParams(gate=args.gate, birth_hits=args.birth_hits, birth_window=args.birth_window,
                         max_misses=args.max_misses, min_displacement=args.min_displacement,
                         motion_window=args.motion_window, early_step=args.early_step,
                         hover_frames=args.hover_frames, coast=args.coast, release_after=args.release_after,
                         compensate=not args.no_compensate, gate_min=min(TrackerParams.gate_min, args.gate),
                         camera=args.camera, min_warp=args.min_warp, birth_image=not args.no_birth_image)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``irstd track`` on ``p``; sets ``func``."""
    p.description = ("Detect and track targets frame by frame. Writes OUT/tracks.jsonl (one record per frame as it "
                     "finishes: the detection record plus track ids, confirmed targets and the camera's motion), "
                     "OUT/tracks_mot.csv (MOT challenge: frame,id,bb_left,bb_top,w,h,conf,-1,-1,-1, frames from 1 in "
                     "source order; it holds the OFFLINE result: a track confirmed at frame t also confirms its "
                     "earlier detections), OUT/detections.json/.csv (the raw detections) and with --overlay a video "
                     "or PNG folder.")
    p.add_argument("checkpoint", help=MODEL_SPEC_HELP + "; or an .onnx file of irstd export (ONNX Runtime)")
    p.add_argument("inputs", nargs="+", metavar="SOURCE",
                   help="video file, image folder or glob (natural order), multi-page TIFF, or image files")
    p.add_argument("--out", default=TRACKS_DIR, help=f"output folder (default ./{TRACKS_DIR})")
    p.add_argument("--threshold", type=probability, default=0.5, help=THRESHOLD_HELP)
    add_device(p)
    add_verify(p)
    add_precision(p, "dtype of the fast mode (default: the device's best)")
    add_frame_options(p)
    p.add_argument("--resume", action="store_true",
                   help="keep the frames OUT/tracks.jsonl already holds (an interrupted run), rebuild the tracker "
                        "from them and run the rest: the output equals an unbroken run's")
    p.add_argument("--stream", action="store_true", help="print one line per frame as it finishes")
    p.add_argument("--overlay", action="store_true",
                   help="write an overlay (raw boxes red, confirmed green with ids, trails): OUT/tracks_overlay.mp4 "
                        "for a video input, else PNGs in OUT/overlay/")
    p.add_argument("--fps", type=ranged(float, 0, 1000, open_low=True), default=None,
                   help="frame rate of the overlay video (default: the source video's own, else 25)")
    p.add_argument("--offline", action="store_true",
                   help="draw the overlay with the offline result (after the run, reading the source again)")
    p.add_argument("--labels", metavar="FILE",
                   help="score the run at the end against one labelled point per frame (as irstd evaluate-track)")
    p.add_argument("--max-pixels", type=positive_int, default=None, help="refuse frames whose header claims more pixels")
    add_max_memory(p)
    p.add_argument("--full-every", type=ranged(int, 1, 100000), default=1, metavar="N",
                   help="run the whole frame every N-th frame and, between, only windows around the live tracks "
                        "(a new target is seen at most N-1 frames late, at once after a scene cut, a zoom step or a "
                        "confirmed track's miss; 1, the default: every frame whole; "
                        "docs/tracking.md#speed)")
    p.add_argument("--window", type=ranged(int, 16, 4096), default=64, metavar="PX",
                   help="with --full-every: the window's side around each track (default 64)")
    add_tracker_options(p)
    retains_memory(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ._common import torchrun_rank

    me, world = torchrun_rank()
    if world > 1:  # tracking is sequential: one process follows the whole stream (docs/tracking.md)
        if me != 0:
            say(f"irstd track: rank {me} of {world} has nothing to do: tracking is sequential, rank 0 runs "
                "every frame")
            return 0
        say(f"irstd track: under torchrun rank 0 tracks every frame; the other {world - 1} rank(s) exit")
    return _track(args)


def _track(args: argparse.Namespace) -> int:
    import sys
    from dataclasses import asdict

    from ..core.device import resolve_device
    from ..core.distributed import rank_device
    from ..inference import Predictor
    from ..inference.records import RecordWriter, check_resume, read_records, start_outputs
    from ..inference.sources import open_source
    from ..inference.track_outputs import MOT_NAME, TRACKS_NAME
    from ..inference.track_overlay import TrackOverlayWriter
    from ..inference.tracking_run import track_frames
    from ._common import check_out, int8_model, skip_line, verifier_of, write_stopped_line

    params = tracker_params(args)
    out = check_out(args.out)  # a read-only or full --out: one line, before the model loads
    predictor = Predictor.from_checkpoint(
        int8_model(args), device=str(rank_device(resolve_device(args.device))), threshold=args.threshold,
        precision=args.precision, amp=None if args.precision == "fp32" else args.amp, input_range=args.input_range,
        tile=args.tile, tile_overlap=args.tile_overlap, merge_distance=args.merge_distance,
        max_memory=args.max_memory, verifier=verifier_of(args))
    admit = predictor.admit
    if args.full_every > 1:
        from ..inference import WindowedPredictor

        predictor = WindowedPredictor(predictor, full_every=args.full_every, window=args.window)
    source = open_source(list(args.inputs), max_pixels=args.max_pixels, admit=admit)
    settings = {"checkpoint": str(args.checkpoint), "threshold": args.threshold, "precision": predictor.label(),
                "full_every": args.full_every, "window": args.window, "input_range": args.input_range,
                "tile": args.tile, "tile_overlap": args.tile_overlap,
                "merge_distance": args.merge_distance, "tracker": asdict(params)}
    if args.resume:
        check_resume(out, **settings)
    start_outputs(out, resume=args.resume, names=(MOT_NAME,))
    writer = RecordWriter(out / TRACKS_NAME, resume=args.resume)
    done = read_records(writer.path) if writer.done else []
    done = sorted({int(r["frame"]): r for r in done}.values(), key=lambda r: int(r["frame"]))
    if done:
        say(f"resuming: {len(done)} frame(s) already in {writer.path}")
    overlay = TrackOverlayWriter(out, source, fps=args.fps) if args.overlay and not args.offline else None
    interrupted, stopped = False, None
    try:
        for step in track_frames(predictor, source, params=params, replay_records=done):
            if step.replayed:
                if overlay is not None:
                    overlay.remember(step.record)
                continue
            rec = step.record
            try:  # the overlay first: a frame in the records has its overlay (a resumed run skips it)
                if overlay is not None and step.detection is not None and step.detection.frame is not None:
                    overlay.add(step.detection.frame, rec)
                writer.write(rec)
            except OSError as exc:  # the disk filled up or went read-only: keep what is written, say so
                stopped = exc
                break
            if "error" in rec:
                say(skip_line(rec["file"], rec["error"]))
            if args.stream:
                ids = ",".join(f"{c['id']}{'*' if c['predicted'] else ''}" for c in rec["confirmed"])
                say(f"frame {rec['frame'] + 1}: {len(rec.get('targets', ()))} raw, confirmed [{ids}]")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        writer.close()
        if overlay is not None:
            try:
                overlay.close()
            except OSError as exc:
                stopped = stopped or exc
    if stopped is None:
        try:
            return _finish(args, out, settings, interrupted)
        except OSError as exc:
            stopped = exc
    print(write_stopped_line(stopped, writer.kept, writer.path), file=sys.stderr)
    return 1


def _finish(args: argparse.Namespace, out: Path, settings: dict, interrupted: bool) -> int:
    from ..inference.schema import detections_document, write_detections
    from ..inference.track_outputs import MOT_NAME, TRACKS_NAME, read_track_run, summarize, write_mot

    records = read_track_run(out / TRACKS_NAME)
    raw = [{k: v for k, v in r.items() if k not in ("tracks", "confirmed", "coasting", "motion")} for r in records]
    write_detections(out, detections_document(raw, **settings))
    if interrupted:
        say(f"interrupted: {len(records)} finished frame(s) kept in {out / TRACKS_NAME}; run the same command "
             "with --resume to do the rest")
        return 130
    mot = write_mot(out / MOT_NAME, records)
    summary = summarize(records)
    say(summary.table())
    say(f"{len(records)} frame(s) -> {out / TRACKS_NAME}, {mot} (offline), {out / 'detections.json'}")
    if args.overlay and args.offline:
        _offline_overlay(args, out, records)
    if args.labels:
        from .evaluate_track import score_run

        score_run(records, args.labels, "row,col", 4.0, out)
    return 1 if records and summary.errors == len(records) else 0


def _offline_overlay(args: argparse.Namespace, out: Path, records: list) -> None:
    """Draw the overlay with the offline result: the source read a second time."""
    from ..inference.sources import open_source
    from ..inference.track_outputs import offline_results
    from ..inference.track_overlay import TrackOverlayWriter
    from ..inference.tracking_run import track_record

    offline = offline_results(records)
    source = open_source(list(args.inputs), max_pixels=args.max_pixels)
    overlay = TrackOverlayWriter(out, source, fps=args.fps)
    try:
        for frame in source.frames():
            if frame.index < len(records) and frame.image is not None:
                overlay.add(frame, track_record(records[frame.index], offline[frame.index]))
    finally:
        overlay.close()
