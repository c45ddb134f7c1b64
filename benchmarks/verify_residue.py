"""What a verifier leaves on the held-out SIRST-V2 background groups (docs/verify.md, "The goals after round 4").

    PYTHONPATH=src python benchmarks/verify_goals.py maps sgem_unet.sirst          # the detector's maps, once
    PYTHONPATH=src python benchmarks/verify_residue.py sgem_unet.sirst --verifier verifier.sirst \
        --out benchmarks/results/verify/residue-sgem_unet

Every target the detector finds on a held-out frame (threshold 0.5, the maps of ``verify_goals.py maps``)
and the verifier keeps is a false target. This counts them per scene group and by area, and writes a
mosaic of their 32 px neighbourhoods (each stretched on its own) to ``runs/verify/residue-*.png``: the
mosaic is made of dataset pixels, so it stays out of the repository.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("IRSTD_DATASETS") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
MAPS = Path("runs/verify/maps")
#: area bins in pixels: a 1-4 px point, a compact spot up to 3x3, larger blobs and streaks
BINS = ((1, 4), (5, 9), (10, 30), (31, 10**9))


def residue(model: str, verifier) -> tuple[list[dict], dict[str, float], list[np.ndarray]]:
    """The kept false targets (frame, group, centre, area, peak), the megapixels per group, their patches."""
    from irstd.data import open_negatives
    from irstd.inference import extract_targets
    from irstd.verify.patches import extract_patches

    neg = open_negatives(DATA / "SIRST-V2-background", "heldout")
    maps = np.load(MAPS / f"{model}-v2-heldout.npz")
    rows, mp, patches = [], collections.Counter(), []
    for i, f in enumerate(neg):
        frame = neg.load(i)
        prob = maps[f.stem].astype(np.float32)
        targets = extract_targets(prob, prob > 0.5)  # the threshold verify_goals.py scores at
        mp[f.group] += prob.size / 1e6
        if not targets:
            continue
        kept = [t for t, k in zip(targets, verifier.keep(frame, targets)) if k]
        plane = frame if frame.ndim == 2 else frame[..., 0]
        patches += list(extract_patches(plane, [(t.x, t.y) for t in kept], 32)) if kept else []
        rows += [{"frame": f.stem, "group": f.group, "x": round(t.x, 1), "y": round(t.y, 1), "area": int(t.area),
                  "peak": round(float(t.peak), 4)} for t in kept]
    return rows, dict(mp), patches


def mosaic(patches: list[np.ndarray], path: Path, cols: int = 12, most: int = 120) -> None:
    from PIL import Image

    step = max(1, len(patches) // most)
    tiles = []
    for p in patches[::step][:most]:
        lo, hi = np.percentile(p, 1), np.percentile(p, 99.9)
        tiles.append(np.kron(np.clip((p - lo) / max(hi - lo, 1e-6), 0, 1), np.ones((3, 3))))
    if not tiles:
        return
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % cols)
    grid = np.vstack([np.hstack(tiles[r : r + cols]) for r in range(0, len(tiles), cols)])
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((255 * grid).astype(np.uint8)).save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("--verifier", default=None, help="name or file (default: the shipped default)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/verify/residue")
    args = p.parse_args(argv)
    import torch

    from irstd.verify import load_verifier

    torch.set_num_threads(args.threads)
    ver = load_verifier(args.verifier)
    rows, mp, patches = residue(args.model, ver)
    area = np.asarray([r["area"] for r in rows])
    total = sum(mp.values())
    cmd = "PYTHONPATH=src python " + shlex.join(["benchmarks/verify_residue.py", *sys.argv[1:]])
    lines = [f"`{cmd}`", "", f"`{args.model}` + `{ver.name}` (threshold {ver.threshold:.4g}) on the held-out "
             f"background groups: {len(rows)} false targets kept over {total:.2f} MP ({len(rows) / total:.1f} per MP; "
             f"1 per MP would be {total:.0f}).", "",
             "| group | MP | false targets | per MP | " + " | ".join(f"area {a}–{b} px" if b < 10**9 else f"area > {a - 1} px"
                                                      for a, b in BINS) + " |",
             "|---|---|---|---|" + "---|" * len(BINS)]
    for g in sorted(mp) + ["all"]:
        sel = area if g == "all" else np.asarray([r["area"] for r in rows if r["group"] == g])
        m = total if g == "all" else mp[g]
        lines.append(f"| {g} | {m:.2f} | {len(sel)} | {len(sel) / m:.1f} | "
                     + " | ".join(str(int(((sel >= a) & (sel <= b)).sum())) for a, b in BINS) + " |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"command": cmd, "verifier": ver.name, "threshold": ver.threshold,
                                                    "megapixels": mp, "targets": rows}, indent=1) + "\n")
    name = str(ver.name)
    tag = Path(name).stem if name.endswith(".safetensors") else name.replace(".", "-")
    mosaic(patches, Path("runs/verify") / f"residue-{args.model}-{tag}.png")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
