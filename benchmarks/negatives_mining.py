"""Memory of the decoded negative frames and the cost of one mining pass (docs/clutter.md).

    PYTHONPATH=src python benchmarks/negatives_mining.py [--root ../shared/datasets/SIRST-V2-background]
        [--model sgem_unet_t] [--frames 5] [--threads 1]

Decodes the train scene groups as training does (compact native dtype), then scores ``--frames`` of them
(evenly spaced) whole, at native resolution, with a freshly initialised model, as a mining pass does; the
per-frame time times the number of frames is the cost of one pass.
"""

from __future__ import annotations

import argparse
import time

import torch

from irstd.data import RandomFlip, open_negatives
from irstd.engine.mining import score_negatives
from irstd.engine.mixed_batches import NegativeCrops
from irstd.models import create_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="../shared/datasets/SIRST-V2-background")
    parser.add_argument("--model", default="sgem_unet_t")
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--crop", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    negatives = open_negatives(args.root, split="train")
    crops = NegativeCrops(negatives, (0.0, 1.0), args.crop, RandomFlip(), 2, 1)
    as_float = sum(f.size * 4 for f in crops.frames)
    print(f"{len(crops.frames)} train frames: {crops.nbytes / 1e6:.1f} MB decoded ({as_float / 1e6:.1f} MB as "
          f"float32), {time.perf_counter() - start:.1f} s to decode")
    step = max(1, len(crops.frames) // args.frames)
    frames = crops.frames[::step][: args.frames]
    model = create_model(args.model)
    start = time.perf_counter()
    pool = score_negatives(model, frames, (0.0, 1.0), model.stride, torch.device("cpu"), top=8, radius=args.crop // 2)
    per_frame = (time.perf_counter() - start) / len(frames)
    print(f"mining {args.model}, {args.threads} thread(s): {per_frame:.2f} s/frame over {len(frames)} frames "
          f"({sum(f.size for f in frames) / len(frames) / 1e6:.2f} Mpx each, {len(pool)} peaks); one pass over "
          f"{len(crops.frames)} frames ~ {per_frame * len(crops.frames) / 60:.1f} min")


if __name__ == "__main__":
    main()
