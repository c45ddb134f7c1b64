"""Ship a trained checkpoint as ``model.tag``: fp16 file under src/irstd/weights/, its SHA-256, the test
metrics of the shipped file (the same ``evaluate_model`` as ``irstd evaluate``, fp32) and the agreement of
its masks with the fp32 source, written as one row of src/irstd/weights/tags.json.

    python scripts/publish_weights.py runs/X/best.safetensors --name sgem_unet.sirst \\
        --data ../shared/datasets/SIRST --split-file ../shared/datasets/splits/NUAA-SIRST_50_50/test.txt \\
        --mask-dir ../shared/datasets/SIRST-corrections/masks \\
        --train-command "irstd train --config configs/sirst_cpu.yaml ..." --data-note "SIRST v1 ..."

Without ``--data`` the shipped file is scored on the 50 synthetic test scenes of ``irstd evaluate`` and
``irstd demo`` (seed 0, a random stream disjoint from training and validation).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from irstd.core.errors import IRSTDError
from irstd.data import load_image, open_dataset
from irstd.data.synthetic_dataset import TEST_STREAM, open_synthetic
from irstd.engine.evaluation import evaluate_model
from irstd.inference import Predictor
from irstd.models import load_model, read_checkpoint, split_name_tag
from irstd.models.pretrained import METRIC_DIGITS, WEIGHTS_DIR, PretrainedTag, file_sha256
from irstd.models.publishing import convert_checkpoint, write_tag

SYNTHETIC_TEST = 50  # = irstd evaluate's default synthetic test set
METRIC_KEYS = ("iou", "niou", "precision", "recall", "f1", "pd", "fa", "target_precision", "target_f1")


def test_frames(args: argparse.Namespace, seed: int) -> list[np.ndarray]:
    """The raw test frames the metrics are measured on (for the mask agreement)."""
    if args.data is None:
        ds = open_synthetic("test", SYNTHETIC_TEST, seed)
        return [ds.scene(i)[0] for i in range(len(ds))]
    ds = open_dataset(args.data, args.split, split_file=args.split_file, mask_dir=args.mask_dir)
    return [load_image(item.image) for item in ds.items]


def agreement(src: Path, dst: Path, frames: list[np.ndarray]) -> dict[str, float | int]:
    """Masks (fp32 compute, threshold 0.5) of the fp16-stored file against the fp32 source."""
    a = Predictor(load_model(src), device="cpu", precision="fp32")
    b = Predictor(load_model(dst), device="cpu", precision="fp32")
    differ = same_frames = pixels = 0
    max_dprob = 0.0
    for frame in frames:
        pa, pb = a.predict(frame)[0], b.predict(frame)[0]
        d = int((pa.mask != pb.mask).sum())
        differ += d
        same_frames += d == 0
        pixels += pa.mask.size
        max_dprob = max(max_dprob, float(np.abs(pa.prob - pb.prob).max()))
    return {"frames": len(frames), "frames_identical": same_frames, "pixels": pixels,
            "pixels_differing": differ, "max_abs_prob_diff": max_dprob}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path, help="the fp32 checkpoint written by irstd train")
    p.add_argument("--name", required=True, help="model.tag, e.g. sgem_unet.sirst")
    p.add_argument("--data", default=None, help="test data root (default: synthetic test scenes)")
    p.add_argument("--split", default="test")
    p.add_argument("--split-file", default=None)
    p.add_argument("--mask-dir", default=None)
    p.add_argument("--train-command", required=True, help="the command that trained the checkpoint")
    p.add_argument("--data-note", required=True, help="training data, split and its licence terms")
    p.add_argument("--test-note", default=None, help="what the metrics were measured on")
    p.add_argument("--input-range", type=float, nargs=2, default=(0.0, 255.0), metavar=("LOW", "HIGH"))
    p.add_argument("--note", default="")
    p.add_argument("--default", action="store_true", help="the tag pretrained=True picks for this model")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model, tag = split_name_tag(args.name)
        _, meta = read_checkpoint(args.checkpoint)
        if tag is None or meta["model_name"] != model:
            raise IRSTDError(f"--name {args.name}: expected {meta['model_name']}.<tag> for {args.checkpoint}")
        dst = WEIGHTS_DIR / f"{model}-{tag}.safetensors"
        sha = convert_checkpoint(args.checkpoint, dst)
        seed = 0  # irstd evaluate's synthetic test seed
        report = evaluate_model(load_model(dst), args.data, split=args.split, split_file=args.split_file,
                                mask_dir=args.mask_dir, synthetic_n=SYNTHETIC_TEST, synthetic_seed=seed)
        agree = agreement(args.checkpoint, dst, test_frames(args, seed))
    except IRSTDError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    res = report.result.as_dict()
    metrics = {k: round(100 * res[k] if k != "fa" else res[k], METRIC_DIGITS) for k in METRIC_KEYS}
    metrics.update(n_images=res["n_images"], n_targets=res["n_targets"])
    if args.data is None:
        cmd = f"irstd evaluate {args.name}"
        test_note = args.test_note or f"{SYNTHETIC_TEST} synthetic test scenes (seed {seed}, stream {TEST_STREAM}: unseen in training)"
    else:
        parts = ["irstd", "evaluate", args.name, "--data", args.data, "--split", args.split]
        parts += ["--split-file", args.split_file] if args.split_file else []
        parts += ["--mask-dir", args.mask_dir] if args.mask_dir else []
        cmd = shlex.join(parts)
        # dataset and split by name, never the local paths (irstd models --pretrained shows this to users)
        split = (f"{Path(args.split_file).parent.name}/{Path(args.split_file).stem}" if args.split_file
                 else args.split)
        test_note = args.test_note or f"{Path(args.data).name} {split} list, {res['n_images']} images"
    row = PretrainedTag(
        model=model, tag=tag, file=dst.name, sha256=sha, dtype="float16",
        normalization=tuple(meta["normalization"]), input_range=tuple(args.input_range),
        data=args.data_note, train_command=args.train_command, train_config=meta.get("config", {}),
        metrics=metrics, metrics_command=cmd, test_data=test_note, agreement=agree,
        source_sha256=file_sha256(args.checkpoint), default=args.default, note=args.note,
    )
    write_tag(row)
    print(f"{row.name}: {dst} ({dst.stat().st_size / 1e6:.2f} MB, sha256 {sha})")
    print(report.result.to_markdown())
    print(f"fp16 vs fp32 masks: {agree}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
