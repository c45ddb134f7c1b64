"""``irstd demo``: the main job on built-in synthetic data (shipped weights or ``--train``; evaluate, detect, overlay)."""

from __future__ import annotations

import argparse

from typing import TYPE_CHECKING

from ..apps.demo_defaults import DEMO_WEIGHTS
from ..core.errors import ConfigError
from ._common import RUNS_DIR, positive_int, ranged

if TYPE_CHECKING:
    import torch

    from ..apps.demo import DemoResult

TRAIN_EPOCHS = 12  # --train's default


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", default=DEMO_WEIGHTS,
                   help=f"shipped weights or checkpoint to run (default {DEMO_WEIGHTS}, trained on generated scenes)")
    p.add_argument("--train", action="store_true", help="train a model on the CPU first (a few minutes) and use it")
    p.add_argument("--model", default=None, help="with --train: registered model (default sgem_unet)")
    p.add_argument("--epochs", type=positive_int, default=None, help=f"with --train: epochs of 240 scenes (default {TRAIN_EPOCHS})")
    p.add_argument("--scenes", type=positive_int, default=None, help="with --train: training scenes (default 240)")
    p.add_argument("--out", default=RUNS_DIR, help=f"parent of the run folder (default ./{RUNS_DIR})")
    p.add_argument("--test-scenes", type=positive_int, default=50, help="unseen synthetic test scenes, >= 1 (default 50)")
    p.add_argument("--frames", type=positive_int, default=3, help="fresh frames to detect on, one table and overlay each, >= 1 (default 3)")
    p.add_argument("--track-frames", type=ranged(int, 0), default=32, metavar="N",
                   help="frames of the generated sequence the tracking part runs on (default 32; 0 skips it)")
    p.add_argument("--seed", type=ranged(int, 0), default=0, help="scene seed, >= 0 (and training seed with --train)")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads, >= 1 (default: torch's)")
    p.set_defaults(func=run)


def _describe(model: torch.nn.Module, label: str) -> None:
    from ..core.profiling import count_macs, count_params

    print(f"model {label}: {count_params(model) / 1e6:.3f} M params, "
          f"{count_macs(model, (1, 1, 256, 256)) / 1e9:.2f} GMACs at 256x256")


def _run_train(args: argparse.Namespace) -> DemoResult:
    from ..apps.demo import demo_config, run_demo
    from ..models import create_model

    name = args.model or "sgem_unet"
    cfg = demo_config(args.out, args.epochs or TRAIN_EPOCHS, name)
    cfg.update({"seed": args.seed, "synthetic_seed": args.seed}, "command line")
    if args.scenes:
        cfg.update({"synthetic_train": args.scenes, "synthetic_val": max(2, args.scenes // 10)}, "command line")
    _describe(create_model(name), name)
    print(f"training {cfg.epochs} epoch(s) on {cfg.synthetic_train} synthetic scenes "
          f"({cfg.crop_size}px crops, amp={cfg.amp}, channels_last={cfg.channels_last}) ...")
    return run_demo(cfg, test_images=args.test_scenes, frames=args.frames, track_frames=args.track_frames)


def _run_shipped(args: argparse.Namespace) -> DemoResult:
    from ..apps.demo import run_pretrained_demo
    from ..models import get_pretrained, load_model, resolve_model_spec

    model = load_model(args.weights)  # checks the SHA-256; fails here, before any work, on a bad name
    _describe(model, f"{model.model_name} (weights {args.weights})")
    if resolve_model_spec(args.weights).kind == "shipped":
        print(f"weights trained on {get_pretrained(args.weights).data}")
    return run_pretrained_demo(args.weights, args.out, test_images=args.test_scenes, seed=args.seed,
                               frames=args.frames, track_frames=args.track_frames)


def _print_track(track) -> None:
    """Raw detections against confirmed targets, frame by frame, then the totals."""
    print()
    print(f"## Tracking: {track.description}")
    print("Raw: every detection of the single-frame model. Confirmed: detections of tracks that moved steadily "
          "relative to the scene (irstd.tracking; docs/tracking.md). A true target is found within 4 px.")
    print("| frame | true targets | raw (false) | confirmed (false) | |")
    print("|---|---|---|---|---|")
    for i, f in enumerate(track.frames):
        note = "scene cut: tracks restart" if f.cut else ""
        print(f"| {i} | {f.targets} | {f.raw} ({f.raw_false}) | {f.confirmed} ({f.confirmed_false}) | {note} |")
    t = track.totals()
    print(f"raw: Pd {t['raw_pd']:.1f} %, {t['raw_false']:.2f} false per frame; confirmed (online, confirmation "
          f"delay counted): Pd {t['confirmed_pd']:.1f} %, {t['confirmed_false']:.2f} false per frame")


def run(args: argparse.Namespace) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.frames < 1 or args.test_scenes < 1:
        raise ConfigError("--frames and --test-scenes must be >= 1")
    if args.track_frames < 0:
        raise ConfigError("--track-frames must be >= 0")
    if not args.train:
        given = [f for f, v in (("--model", args.model), ("--epochs", args.epochs), ("--scenes", args.scenes)) if v]
        if given:
            raise ConfigError(f"{', '.join(given)} only apply with --train (the default demo runs shipped weights)")
    res = _run_train(args) if args.train else _run_shipped(args)
    r = res.report.result
    print()
    print(f"## Test: {r.n_images} unseen synthetic scenes ({r.n_targets} targets), threshold 0.5")
    print(r.to_markdown())
    for i, shot in enumerate(res.frames):
        print()
        print(f"## Fresh frame {i}: {len(shot.prediction.targets)} detection(s), "
              f"{shot.n_found} of {shot.n_true} true target(s) found")
        print("| # | x | y | area (px) | peak | true target? |")
        print("|---|---|---|---|---|---|")
        for j, (t, hit) in enumerate(zip(shot.prediction.targets, shot.hits)):
            print(f"| {j} | {t.x:.1f} | {t.y:.1f} | {t.area} | {t.peak:.2f} | {'yes' if hit else 'false alarm'} |")
    if res.track is not None:
        _print_track(res.track)
    print()
    print(f"run folder   : {res.run_dir}")
    print(f"weights      : {res.weights}")
    print(f"overlay      : {res.overlay_path}")
    if res.track is not None:
        print(f"tracks       : {res.track.overlay_path}")
    print(f"total time   : {res.seconds / 60:.1f} min")
    return 0
