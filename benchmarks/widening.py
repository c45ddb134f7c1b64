"""The widening warm start, measured (docs/recipes.md "Warm start from a narrower twin"; docs/weights.md).

    PYTHONPATH=src python benchmarks/widening.py [--data ../shared/datasets/SIRST] [--out runs/widen]

Writes, under ``--out``: ``select.txt``, the 21 select frames the trainer holds out of the 50_50 train
list (``val_fraction`` 0.1, seed 0: the same permutation as ``engine/data.py``), and
``<wide>-widened.safetensors``, the widened start of ``sgem_unet`` and ``unet`` from ``sgem_unet_t.sirst``
and ``unet_t.sirst`` exactly as ``irstd train --init-weights`` makes it (split noise 0.1, seed 0); then
prints, for an even split and for split noise 0.1, how far two copies of one channel of the first encoder
conv drift apart in 5 AdamW steps (lr 3e-4, random 64 px crops). Score the files with ``irstd evaluate
FILE --data … --split-file OUT/select.txt``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from irstd.data import open_dataset
from irstd.engine.config import TrainConfig
from irstd.engine.data import select_split
from irstd.models import create_model, read_checkpoint, save_checkpoint
from irstd.models.widen import widen_into, widen_state_dict

PAIRS = (("sgem_unet_t.sirst", "sgem_unet"), ("unet_t.sirst", "unet"))


def select_list(data: Path, split_file: Path) -> list[str]:
    """The trainer's select frames (seed 0, val_fraction 0.1)."""
    full = open_dataset(data, split="train", split_file=split_file, normalization=(0.0, 1.0))
    select, _ = select_split(len(full), TrainConfig(val_fraction=0.1, seed=0))
    return [full.items[i].name for i in select]


def copies_drift(narrow: torch.nn.Module, wide_name: str, noise: float, steps: int = 5) -> float:
    """Largest difference between copies 0 and 1 of the first encoder conv's channels after ``steps``."""
    wide = create_model(wide_name)
    wide.load_state_dict(widen_state_dict(narrow, wide, split_noise=noise))
    opt = torch.optim.AdamW(wide.parameters(), lr=3e-4)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x = torch.randn(4, 1, 64, 64, generator=gen)
        y = (torch.rand(4, 1, 64, 64, generator=gen) > 0.99).float()
        loss = F.binary_cross_entropy_with_logits(wide(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    weight = wide.encoder[0][0][0].weight.detach()  # (C_wide, 1, 3, 3): one input, the copies start equal
    c = narrow.encoder[0][0][0].weight.shape[0]
    return (weight[:c] - weight[c: 2 * c]).abs().max().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/datasets/SIRST")
    parser.add_argument("--split-file", default="../shared/datasets/splits/NUAA-SIRST_50_50/train.txt")
    parser.add_argument("--out", default="runs/widen")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "select.txt").write_text("\n".join(select_list(Path(args.data), Path(args.split_file))) + "\n")
    for tag, wide_name in PAIRS:
        weights, meta = read_checkpoint(tag)
        narrow = create_model(meta["model_name"])
        narrow.load_state_dict(weights)
        wide = create_model(wide_name)
        widen_into(narrow, wide, split_noise=0.1, seed=0)
        path = out / f"{wide_name}-widened.safetensors"
        save_checkpoint(path, wide, normalization=tuple(meta["normalization"]), input_range=meta.get("input_range"),
                        config={"init_weights": tag, "widen_split_noise": 0.1})
        print(f"written: {path}")
    weights, meta = read_checkpoint("sgem_unet_t.sirst")
    narrow = create_model("sgem_unet_t")
    narrow.load_state_dict(weights)
    for noise in (0.0, 0.1):
        print(f"split noise {noise}: copies 0 and 1 of sgem_unet's first conv differ by "
              f"{copies_drift(narrow, 'sgem_unet', noise):.3g} after 5 AdamW steps")


if __name__ == "__main__":
    main()
