"""Training images/s under fp32 and bf16 autocast, each with and without channels-last, in one run.

    PYTHONPATH=src python benchmarks/train_precision.py --model sgem_unet_s --crop 64 --batch 16 --threads 1 \
        --out benchmarks/results/train-precision-cpu

The four settings train their own copy of the model on the same batches (the trainer's own
``train_one_epoch``, loss and optimiser, the device-resident synthetic data path), one epoch each in
turn per round, so that a load change on a shared machine hits all of them alike; the figure is the
median images/s over the rounds after the first (warm-up). On a CPU, bf16 is worth it only where
oneDNN has native bf16 kernels (AVX-512 BF16 / AMX), which the result records.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch

from irstd.bench.timing import environment
from irstd.core.seeding import epoch_seed, seed_everything
from irstd.engine.config import TrainConfig
from irstd.engine.data import build_train_val
from irstd.engine.epoch import train_one_epoch
from irstd.engine.optimisation import build_optimizer
from irstd.losses import ModelLoss
from irstd.models import create_model

SETTINGS = [("fp32", None, False), ("fp32 channels-last", None, True),
            ("bf16", torch.bfloat16, False), ("bf16 channels-last", torch.bfloat16, True)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="sgem_unet_s")
    p.add_argument("--crop", type=int, default=64), p.add_argument("--batch", type=int, default=16)
    p.add_argument("--images", type=int, default=192, help="synthetic training scenes per epoch")
    p.add_argument("--rounds", type=int, default=4, help="timed rounds (one epoch per setting each)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", help="write <out>.json and <out>.md")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = TrainConfig(model=args.model, crop_size=args.crop, batch_size=args.batch, target_crop_prob=0.75,
                      synthetic_train=args.images, synthetic_val=1, device="cpu", progress=False)
    dev = torch.device("cpu")
    runs = []
    for label, dtype, cl in SETTINGS:
        seed_everything(0)
        model = create_model(cfg.model)
        if cl:
            model = model.to(memory_format=torch.channels_last)
        runs.append((label, dtype, cl, model, build_optimizer(cfg, model.parameters())))
    data = build_train_val(cfg, runs[0][3].stride, "cpu")  # one data set: every setting draws the same batches
    loss_fn = ModelLoss("softiou_bce")
    rates: dict[str, list[float]] = {label: [] for label, *_ in runs}
    for r in range(args.rounds + 1):  # round 0 warms every setting up
        for label, dtype, cl, model, opt in runs:
            seed_everything(epoch_seed(0, r))
            stats = train_one_epoch(model, data.train_loader(r), opt, loss_fn, dev, amp_dtype=dtype, channels_last=cl)
            if r:
                rates[label].append(stats["images_per_s"])
            print(f"round {r} {label}: {stats['images_per_s']:.1f} img/s", flush=True)
    med = {k: sorted(v)[len(v) // 2] for k, v in rates.items()}
    env = environment(dev)
    result = {"command": shlex.join(["python", "benchmarks/train_precision.py", *(sys.argv[1:] if argv is None else argv)]),
              "environment": env, "model": args.model, "crop": args.crop, "batch": args.batch,
              "img_s": rates, "median_img_s": med, "speedup_vs_fp32": {k: v / med["fp32"] for k, v in med.items()}}
    print(json.dumps(result, indent=1))
    if args.out:
        out = Path(args.out)
        out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
        rows = [f"| {k} | {med[k]:.1f} | {result['speedup_vs_fp32'][k]:.2f}x |" for k in med]
        out.with_suffix(".md").write_text(
            f"`{result['command']}`\n\n{env['cpu_name']}, {env['cpu_count']} cores; {args.model}, {args.crop} px crops, "
            f"batch {args.batch}, {env['threads']} thread(s), torch {torch.__version__}, native CPU bf16: {env['cpu_bf16']}; "
            f"median of {args.rounds} "
            "interleaved rounds\n\n| setting | images/s | vs fp32 |\n|---|---|---|\n" + "\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
