"""Training images/s of the host data path against the device-resident one, in one run, on one device.

    PYTHONPATH=src python benchmarks/device_data.py [--data ../shared/datasets/SIRST --split-file ...] [--device cpu]

Both paths train the same model on the same batches (they draw identical crops); the figure is images/s
of the training epochs after the first (the device path decodes the set during its first epoch), the
paths alternating epoch by epoch so that a load change on a shared machine hits both alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch

from irstd.core.seeding import epoch_seed, seed_everything
from irstd.engine.config import TrainConfig
from irstd.engine.data import build_train_val
from irstd.engine.epoch import train_one_epoch
from irstd.engine.optimisation import build_optimizer
from irstd.losses import ModelLoss
from irstd.models import create_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data"), p.add_argument("--split-file")
    p.add_argument("--model", default="unet"), p.add_argument("--device", default="cpu")
    p.add_argument("--crop", type=int, default=128), p.add_argument("--batch", type=int, default=8)
    p.add_argument("--images", type=int, default=64, help="synthetic training scenes (without --data)")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per path")
    p.add_argument("--threads", type=int)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig(model=args.model, data=args.data, split_file=args.split_file, crop_size=args.crop,
                      batch_size=args.batch, target_crop_prob=0.5, synthetic_train=args.images, synthetic_val=1,
                      device=args.device, progress=False)
    dev = torch.device(args.device)
    paths = {}
    for mode in ("off", "on"):
        c = dataclasses.replace(cfg, device_data=mode)
        seed_everything(0)
        model = create_model(c.model).to(dev)
        paths[mode] = (c, model, build_optimizer(c, model.parameters()), build_train_val(c, model.stride, str(dev)))
    loss_fn = ModelLoss("softiou")
    rates: dict[str, list[float]] = {"off": [], "on": []}
    for epoch in range(args.epochs + 1):  # epoch 0 warms both paths up (and decodes the device set)
        for mode, (c, model, opt, data) in paths.items():
            seed_everything(epoch_seed(0, epoch))
            t0 = time.perf_counter()
            stats = train_one_epoch(model, data.train_loader(epoch), opt, loss_fn, dev)
            if epoch:
                rates[mode].append(stats["images_per_s"])
            print(f"epoch {epoch} device_data={mode}: {stats['images_per_s']:.1f} img/s ({time.perf_counter() - t0:.1f} s)")
    med = {m: sorted(r)[len(r) // 2] for m, r in rates.items()}
    print(json.dumps({"device": str(dev), "threads": torch.get_num_threads(), "model": args.model, "crop": args.crop,
                      "batch": args.batch, "data": args.data or f"synthetic ({args.images} scenes)",
                      "host_img_s": rates["off"], "device_img_s": rates["on"],
                      "median_host_img_s": med["off"], "median_device_img_s": med["on"],
                      "speedup": med["on"] / med["off"]}, indent=1))


if __name__ == "__main__":
    main()
