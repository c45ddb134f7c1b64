"""``irstd demo``: build SGEM-UNet, run it on a generated frame, print shape, params and MACs."""

from __future__ import annotations

import argparse
import time

import torch

from ..models import create_model, main_logits
from ..padding import crop_to, pad_to_multiple
from ..profiling import count_macs, count_params


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run SGEM-UNet (untrained) on a generated test frame")
    p.add_argument("--model", default="sgem_unet", help="registered model name (default sgem_unet)")
    p.add_argument("--height", type=int, default=250, help="frame height; any size, padded to the stride")
    p.add_argument("--width", type=int, default=330, help="frame width")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def make_test_frame(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A smooth gradient background with sensor noise and one Gaussian point target: (1, 1, H, W)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij")
    frame = 0.3 + 0.2 * yy / height + 0.02 * torch.randn(height, width, generator=g)
    cy, cx = height * 0.4, width * 0.6
    frame += 0.5 * torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 1.5**2))
    return frame[None, None]


def run(args: argparse.Namespace) -> int:
    torch.manual_seed(args.seed)
    model = create_model(args.model).eval()
    frame = make_test_frame(args.height, args.width, args.seed)
    x, size = pad_to_multiple(frame, model.stride)
    start = time.perf_counter()
    with torch.inference_mode():
        logits = crop_to(main_logits(model(x)), size)
    elapsed = time.perf_counter() - start
    probs = torch.sigmoid(logits)
    print(f"model         : {args.model}")
    print(f"input frame   : {tuple(frame.shape)} (padded to {tuple(x.shape)} for stride {model.stride})")
    print(f"output logits : {tuple(logits.shape)}  (probability range {probs.min():.3f}..{probs.max():.3f}, untrained)")
    print(f"parameters    : {count_params(model) / 1e6:.3f} M")
    print(f"MACs @256x256 : {count_macs(model, (1, model.in_chans, 256, 256)) / 1e9:.2f} G")
    print(f"forward time  : {elapsed * 1e3:.1f} ms on CPU, fp32, {torch.get_num_threads()} threads")
    return 0
