"""Write the README's grid of synthetic samples: docs/images/synthetic_grid.png.

Usage: python scripts/make_synth_grid.py [--out PATH] [--n 8] [--cols 4] [--seed 0]
Targets are ringed in red, bright clutter (not targets) in blue.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from irstd.data.preview import save_sample_grid


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=root / "docs" / "images" / "synthetic_grid.png")
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--cols", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tile", type=int, default=256)
    args = p.parse_args()
    path = save_sample_grid(args.out, n=args.n, cols=args.cols, seed=args.seed, tile=args.tile)
    print(f"{path} ({path.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
