"""``irstd evaluate``: score a checkpoint (or a classical detector by name) on a dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import ConfigError
from ._common import (MODEL_SPEC_HELP, RUNS_DIR, THRESHOLD_HELP, add_device, add_max_memory, add_precision, add_verify,
                      int8_model, output_beside, positive_int, probability, retains_memory, verifier_of)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help=MODEL_SPEC_HELP + "; or an .onnx file of irstd export (ONNX Runtime)")
    p.add_argument("--data", help="dataset root (default: 50 synthetic scenes of --split, seed 0; with --negatives alone: none)")
    p.add_argument("--split", default="test", help="split name (default test)")
    p.add_argument("--split-file", help="a list of image stems to evaluate instead of --split")
    p.add_argument("--mask-dir", help="folder of corrected masks overriding the dataset's, by stem")
    p.add_argument("--skip-invalid", action="store_true", help="skip unusable image/mask pairs (reported)")
    p.add_argument("--threshold", type=probability, default=0.5, help=THRESHOLD_HELP)
    add_device(p)
    add_verify(p)
    add_precision(p, "autocast dtype: with fp32, run the model under it (default none); with fast, the fast mode's dtype")
    p.add_argument("--batch-size", type=positive_int, default=1, help="frames per model call, >= 1 (default 1)")
    add_max_memory(p)
    p.add_argument("--out", help="folder for metrics.json/.md (default: eval-<split> beside the checkpoint)")
    p.add_argument("--save-masks", metavar="DIR", help="write predicted masks as PNG")
    p.add_argument("--sweep", action="store_true",
                   help="also write Pd-Fa and PR curves over thresholds, exact pixel AP / ROC AUC, Pd at fixed Fa")
    p.add_argument("--negatives", metavar="DIR",
                   help="also count false alarms on a folder of target-free frames (alone when --data is not given)")
    p.add_argument("--negatives-split", choices=("heldout", "train", "all"), default="heldout",
                   help="which scene groups of --negatives to score (default heldout: never trained on)")
    p.add_argument("--sequence", action="append", default=[], metavar="DIR",
                   help="with --verify: a folder of frames with point labels (../labels/<name>.txt) scored per frame "
                        "(Pd, false targets; a label found within 4 px); repeatable")
    retains_memory(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.distributed import is_main_process, process_group
    from ..engine.eval_options import EvalData, EvalOptions, MaskOutput, NegativesOptions, RunMode, SweepOptions
    from ..engine.evaluation import evaluate_checkpoint

    if args.sequence and not args.verify:
        raise ConfigError("--sequence scores a detector with and without a verifier: add --verify")
    if args.verify and (args.sweep or args.save_masks):
        raise ConfigError("--verify writes the side-by-side figures only: run --sweep / --save-masks without it")
    neg_split = None if args.negatives_split == "all" else args.negatives_split
    # --negatives (or --sequence) without --data scores those alone
    targets = not ((args.negatives or args.sequence) and args.data is None)
    options = EvalOptions(
        data=EvalData(args.data, args.split, args.split_file, args.mask_dir, args.skip_invalid,
                      batch_size=args.batch_size),
        run=RunMode(args.device, args.amp, args.precision, progress=True, max_memory=args.max_memory),
        threshold=args.threshold,
        sweep=SweepOptions(args.sweep),
        masks=MaskOutput(args.save_masks),
        negatives=NegativesOptions(args.negatives, neg_split, targets),
    )
    tag = Path(args.split_file).stem if args.split_file else args.split
    if not targets:
        tag = f"negatives-{args.negatives_split}" if args.negatives else "sequences"
    if args.verify:
        from ..engine.verify_report import verify_checkpoint

        report = verify_checkpoint(int8_model(args), verifier_of(args), options, args.sequence, args.verify)
        written = report.save(_output(args, tag + "-verify"))
    else:
        with process_group(device=args.device):  # under torchrun: each rank scores a block, rank 0 writes
            report = evaluate_checkpoint(int8_model(args), options=options)
            if not is_main_process():
                return 0
        written = report.save(_output(args, tag))
    print(report.to_markdown())
    print("written: " + ", ".join(str(p) for p in written if p.exists()))
    return 0


def _output(args: argparse.Namespace, tag: str) -> Path:
    """``--out``, else ``eval-<tag>`` beside a checkpoint file, else under the runs folder."""
    from ..models import resolve_model_spec

    if args.out:
        return Path(args.out)
    if resolve_model_spec(args.checkpoint).is_local_file:  # scored, so it exists
        return output_beside(args.checkpoint, f"eval-{tag}")
    return Path(RUNS_DIR) / f"eval-{args.checkpoint}-{tag}"
