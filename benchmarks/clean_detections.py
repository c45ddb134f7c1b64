"""Clean detections, before and after: border artefacts per stride-pad mode, and fragments per merge distance.

    python benchmarks/clean_detections.py --datasets ../shared/datasets --out benchmarks/results/clean-detections

For each shipped model (default ``sgem_unet_t.sirst`` and ``sgem_unet.sirst``) and each way of padding a
frame to the model's stride (``constant`` = zeros, the training mean, the pad before; ``reflect``;
``replicate``; ``crops``: no pad, the largest stride-multiple crops anchored at the frame's corners, up to
4 runs; the library pads in :data:`irstd.core.padding.STRIDE_PAD_MODE`), the parts (``--parts``, all by default):

* **sirst** — on the NUAA-SIRST 50/50 *train* list: detections (mask components, threshold 0.5, no
  merging), those touching the frame border (per side), frames with one; IoU, Pd and false targets.
* **negatives** — the same border counts on the SIRST-V2 background *train* scene groups
  (``src/irstd/data/negatives_split.json``). A frame whose size is already a multiple of the stride is
  not padded: it is run once and counted for every mode.
* **fragments** — on SIRST train with the new pad: every pair of predicted components closer than 20 px
  (Euclidean distance between their nearest pixel centres) as pieces of one annotated target, of two
  targets, a target and clutter, or clutter; and for each candidate merge distance the targets still in
  pieces and what the merged detections join. This chose :data:`irstd.inference.targets.MERGE_DISTANCE`.
* **test** — IoU, nIoU, Pd and Fa on the 50/50 *test* list (corrected masks) per pad mode, only to check
  that the chosen pad costs nothing there (never used to choose), and the frames the issue names: border
  detections of ``Misc_87`` and ``Misc_126``, detections of ``Misc_314`` with and without merging.

Writes ``OUT.json`` (every figure; a run adds its parts to an existing file, so parts can run in
separate sittings) and ``OUT.md`` (the tables, headed by the commands that made them).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from irstd.bench.report import save_report
from irstd.core.components import connected_components
from irstd.core.padding import STRIDE_PAD_MODE, crop_to, pad_to_multiple
from irstd.data import open_dataset, open_negatives
from irstd.inference import Predictor
from irstd.inference.targets import MERGE_DISTANCE, extract_targets, merge_groups
from irstd.metrics import SegMetrics

MODES = ("constant", "reflect", "replicate", "crops")
SIDES = ("top", "left", "bottom", "right")
PAIR_RANGE = 20.0  # pairs of components closer than this are listed
CANDIDATES = (0.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
PARTS = ("sirst", "negatives", "fragments", "test", "named")
NAMED = {"border": ("Misc_87", "Misc_126"), "merge": ("Misc_314",)}


class PaddedPredictor(Predictor):
    """The predictor with the stride pad as a setting (the library pads in :data:`STRIDE_PAD_MODE`)."""

    pad_mode = STRIDE_PAD_MODE

    def _run(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        if self.pad_mode == "crops":
            return [self._crops(x) for x in xs]
        x = torch.from_numpy(np.stack(xs))[:, None]  # (B, 1, H, W)
        x, size = pad_to_multiple(x.to(self.device), self.stride, self.pad_mode)
        return list(torch.sigmoid(crop_to(self.runner(x), size))[:, 0].cpu().numpy())

    def _crops(self, x: np.ndarray) -> np.ndarray:
        """No pad: the largest stride-multiple crops anchored at the corners (1, 2 or 4 runs); each pixel
        comes from the crop anchored at its own corner of the frame, so every frame edge is a crop edge."""
        h, w = x.shape
        ch, cw = h // self.stride * self.stride, w // self.stride * self.stride
        if min(ch, cw) == 0:
            return super()._run([x])[0]
        out = np.empty((h, w), np.float32)
        rows = [(0, slice(0, h))] if ch == h else [(0, slice(0, h // 2)), (h - ch, slice(h // 2, h))]
        cols = [(0, slice(0, w))] if cw == w else [(0, slice(0, w // 2)), (w - cw, slice(w // 2, w))]
        for y0, ry in rows:
            for x0, rx in cols:
                crop = torch.from_numpy(np.ascontiguousarray(x[y0 : y0 + ch, x0 : x0 + cw]))[None, None]
                prob = torch.sigmoid(self.runner(crop.to(self.device)))[0, 0].cpu().numpy()  # (ch, cw)
                out[ry, rx] = prob[ry.start - y0 : ry.stop - y0, rx.start - x0 : rx.stop - x0]
        return out


def probability(p: PaddedPredictor, frame: np.ndarray, mode: str) -> np.ndarray:
    p.pad_mode = mode
    return p.probabilities([frame])[0]


def border_counts(mask: np.ndarray) -> dict:
    """Detections (components, no merging) of a mask (H, W), those touching the border, per side."""
    h, w = mask.shape
    targets = extract_targets(mask.astype(np.float32), mask, merge_distance=0)
    sides = dict.fromkeys(SIDES, 0)
    touching = 0
    for t in targets:
        x0, y0, x1, y1 = t.bbox
        hit = dict(zip(SIDES, (y0 == 0, x0 == 0, y1 == h - 1, x1 == w - 1)))
        touching += any(hit.values())
        for k, v in hit.items():
            sides[k] += int(v)
    return {"detections": len(targets), "border": touching, **sides}


def add(total: dict, counts: dict) -> None:
    for k, v in counts.items():
        total[k] = total.get(k, 0) + v
    total["frames"] = total.get("frames", 0) + 1
    total["frames_with_border"] = total.get("frames_with_border", 0) + int(counts["border"] > 0)


def needs_pad(shape: tuple[int, int], stride: int) -> bool:
    return shape[0] % stride != 0 or shape[1] % stride != 0


def run_sirst_border(p: PaddedPredictor, modes: list[str], sirst) -> dict:
    """Border counts, IoU, Pd and false targets per pad mode on the SIRST train list."""
    out: dict = {m: {} for m in modes}
    metrics = {m: SegMetrics(inputs="probs") for m in modes}
    padded = 0
    for i in range(len(sirst)):
        image, gt = sirst.load_raw(i)
        padded += needs_pad(image.shape, p.stride)
        for m in modes:
            prob = probability(p, image, m)
            add(out[m], border_counts(prob > p.threshold))
            metrics[m].update(torch.from_numpy(prob)[None, None], torch.from_numpy(gt)[None, None])
    for m in modes:
        r = metrics[m].compute()
        out[m].update(iou=r.iou, pd=r.pd, fa=r.fa, false_targets=int(
            sum(c.n_pred_components - c.n_matched_preds for c in metrics[m].per_image)), padded=padded)
    return out


def run_negatives_border(p: PaddedPredictor, modes: list[str], negatives, every: int = 1) -> dict:
    """Border counts per pad mode on every ``every``-th frame of the background train groups (a frame
    needing no pad is run once)."""
    out: dict = {m: {} for m in modes}
    padded = 0
    for i in range(0, len(negatives), every):
        frame = negatives.load(i)
        padded += needs_pad(frame.shape, p.stride)
        cache: dict[str, dict] = {}
        for m in modes:
            key = m if needs_pad(frame.shape, p.stride) else "none"
            if key not in cache:
                cache[key] = border_counts(probability(p, frame, m) > p.threshold)
            add(out[m], cache[key])
    for m in modes:
        out[m]["padded"] = padded
    return out


def gt_ids(pred_labels: np.ndarray, n: int, gt_labels: np.ndarray) -> list[set[int]]:
    """For each predicted component, the ground-truth targets it touches (the mask grown by 2 px)."""
    grown = ndimage.grey_dilation(gt_labels, size=(5, 5))  # (H, W): each target's label, 2 px wider
    ids: list[set[int]] = [set() for _ in range(n)]
    on = (pred_labels > 0) & (grown > 0)
    for a, g in zip(pred_labels[on], grown[on]):
        ids[a - 1].add(int(g))
    return ids


def pair_distances(labels: np.ndarray, n: int, reach: float) -> list[tuple[int, int, float]]:
    """(a, b, distance) for components a < b (1-based) whose nearest pixel centres are closer than ``reach``."""
    out = []
    r = int(np.ceil(reach))
    for a, sl in enumerate(ndimage.find_objects(labels), start=1):
        y0, y1 = max(sl[0].start - r, 0), min(sl[0].stop + r, labels.shape[0])
        x0, x1 = max(sl[1].start - r, 0), min(sl[1].stop + r, labels.shape[1])
        win = labels[y0:y1, x0:x1]
        dist = ndimage.distance_transform_edt(win != a)  # (h, w): distance to the nearest pixel of a
        for b in np.unique(win[(win > a)]):
            d = float(dist[win == b].min())
            if d < reach:
                out.append((a, int(b), d))
    return out


KINDS = ("same target", "two targets", "target and clutter", "clutter")


def pair_kind(a: set[int], b: set[int]) -> str:
    """What joining two components with these ground-truth targets (:func:`gt_ids`) would join."""
    if a & b:
        return "same target"
    if a and b:
        return "two targets"
    return "target and clutter" if a or b else "clutter"


def run_fragments(p: PaddedPredictor, sirst) -> dict:
    """Pairs of nearby components by kind, and per candidate merge distance what merging does."""
    pairs = []
    per_d = {d: {"targets_in_pieces": 0, "detections": 0, **{k: 0 for k in KINDS[1:]}} for d in CANDIDATES}
    gt_gaps = []
    n_targets = 0
    for i in range(len(sirst)):
        image, gt = sirst.load_raw(i)
        mask = probability(p, image, STRIDE_PAD_MODE) > p.threshold
        cc, g = connected_components(mask), connected_components(gt)
        n_targets += g.n
        gt_gaps += [d for _, _, d in pair_distances(g.labels, g.n, 100.0)]
        ids = gt_ids(cc.labels, cc.n, g.labels)
        for a, b, d in pair_distances(cc.labels, cc.n, PAIR_RANGE):
            pairs.append({"frame": sirst.names[i], "distance": round(d, 3), "kind": pair_kind(ids[a - 1], ids[b - 1])})
        if not cc.n:
            continue
        for d in CANDIDATES:
            group = merge_groups(cc.labels, cc.n, d)  # (n,)
            per_d[d]["detections"] += int(group.max()) + 1
            for t in range(1, g.n + 1):  # a target in pieces: touched by more than one merged detection
                per_d[d]["targets_in_pieces"] += len({int(group[k]) for k, s in enumerate(ids) if t in s}) > 1
            for k in range(int(group.max()) + 1):  # what each merged detection joined, its worst kind
                members = [ids[j] for j in np.flatnonzero(group == k)]
                kinds = {pair_kind(x, y) for x in members for y in members if x is not y} - {"same target"}
                for kind in KINDS[1:]:
                    if kind in kinds:
                        per_d[d][kind] += 1
                        break
    return {"pad": STRIDE_PAD_MODE, "targets": n_targets, "pairs": pairs, "per_distance": {str(d): v for d, v in per_d.items()},
            "closest_targets": sorted(round(x, 3) for x in gt_gaps)[:12]}


def run_test(p: PaddedPredictor, modes: list[str], test) -> dict:
    """Test-list metrics per pad mode: a no-regression check, never used to choose."""
    metrics = {m: SegMetrics(inputs="probs") for m in modes}
    for i in range(len(test)):
        image, gt = test.load_raw(i)
        for m in modes:
            metrics[m].update(torch.from_numpy(probability(p, image, m))[None, None], torch.from_numpy(gt)[None, None])
    return {m: {k: getattr(metrics[m].compute(), k) for k in ("iou", "niou", "pd", "fa")} for m in modes}


def run_named(p: PaddedPredictor, modes: list[str], test) -> dict:
    """The test frames the issue names, per pad mode: border counts of ``Misc_87`` and ``Misc_126``, and the
    detections of ``Misc_314`` without and with merging."""
    out: dict = {}
    for name in (*NAMED["border"], *NAMED["merge"]):
        image, _ = test.load_raw(test.names.index(name))
        for m in modes:
            prob = probability(p, image, m)
            mask = prob > p.threshold
            if name in NAMED["border"]:
                out.setdefault(name, {})[m] = border_counts(mask)
            else:
                out.setdefault(name, {})[m] = {f"merge {d:g}": [t.as_dict() for t in extract_targets(
                    prob, mask, merge_distance=d)] for d in (0.0, MERGE_DISTANCE)}
    return out


def border_header() -> list[str]:
    """The head of the border table."""
    return ["## Border artefacts per stride pad", "",
            "| model | pad | data | frames off the stride | detections | touching the border | top / left / bottom / right "
            "| frames with one | train IoU (%) | train Pd (%) | false targets |", "|" + "---|" * 11]


def fragment_lines(frag: dict) -> list[str]:
    """The fragment tables of the report: nearby pairs by kind and distance, and what each merge distance does."""
    pads = sorted({f.get("pad", "replicate") for f in frag.values()})
    lines = ["", f"## Fragments (SIRST train, pad `{', '.join(pads)}`)", "",
             "Pairs of predicted components closer than 20 px, by the distance between their nearest pixel centres:",
             "", "| model | kind | ≤ 2 | ≤ 3 | ≤ 4 | ≤ 5 | ≤ 6 | ≤ 8 | ≤ 10 | < 20 |", "|" + "---|" * 10]
    for model, f in frag.items():
        for kind in KINDS:
            ds = [q["distance"] for q in f["pairs"] if q["kind"] == kind]
            cells = " | ".join(str(sum(d <= b for d in ds)) for b in (2, 3, 4, 5, 6, 8, 10))
            lines.append(f"| `{model}` | {kind} | {cells} | {len(ds)} |")
    lines += ["", "Per merge distance d (0 = off): ground-truth targets still split over several detections; merged "
              "detections that join two annotated targets, a target and clutter, pieces of clutter; all detections:", "",
              "| model | d | targets in pieces | joins two targets | joins target and clutter | joins clutter | detections |",
              "|---|---|---|---|---|---|---|"]
    for model, f in frag.items():
        for d, v in f["per_distance"].items():
            lines.append(f"| `{model}` | {float(d):g} | {v['targets_in_pieces']} / {f['targets']} | {v['two targets']} "
                         f"| {v['target and clutter']} | {v['clutter']} | {v['detections']} |")
    for model, f in frag.items():
        lines.append(f"\nAnnotated targets of one frame closest to each other (px, `{model}`'s run): {f['closest_targets']}")
    return lines


def markdown(doc: dict) -> list[str]:
    lines = ["# Clean detections: border artefacts and fragments", "", "Made by (each command adds its parts):", "",
             *[f"- `{c['command']}` ({c['machine']}, {c['seconds']:.0f} s): {c['parts']}" for c in doc["commands"]],
             "", "Threshold 0.5; detections for the border counts are mask components without merging.", ""]
    if any("sirst_train" in r or "negatives_train" in r for r in doc["models"].values()):
        lines += border_header()
    for model, r in doc["models"].items():
        for m in doc["modes"]:
            for key, data in (("sirst_train", "SIRST train"), ("negatives_train", "SIRST-V2 bg train groups")):
                if key not in r:
                    continue
                c = r[key][m]
                extra = (f"{100 * c['iou']:.2f} | {100 * c['pd']:.2f} | {c['false_targets']}" if key == "sirst_train"
                         else "– | – | –")
                lines.append(f"| `{model}` | {m} | {data} | {c['padded']} / {c['frames']} | {c['detections']} | "
                             f"{c['border']} | {c['top']} / {c['left']} / {c['bottom']} / {c['right']} | "
                             f"{c['frames_with_border']} | {extra} |")
    frag = {model: r["fragments"] for model, r in doc["models"].items() if "fragments" in r}
    if frag:
        lines += fragment_lines(frag)
    if any("test" in r for r in doc["models"].values()):
        lines += ["", "## Test list (a no-regression check only; nothing was chosen on it)", "",
                  "| model | pad | IoU (%) | nIoU (%) | Pd (%) | Fa (×10⁻⁶) | Misc_87 border / all | Misc_126 border / all |",
                  "|" + "---|" * 8]
        for model, r in doc["models"].items():
            t, named = r.get("test"), r.get("named", {})
            if not t:
                continue
            for m in doc["modes"]:
                k = t[m]
                cells = " | ".join(f"{named[n][m]['border']} / {named[n][m]['detections']}" if n in named else "–"
                                   for n in NAMED["border"])
                lines.append(f"| `{model}` | {m} | {100 * k['iou']:.2f} | {100 * k['niou']:.2f} | {100 * k['pd']:.2f} "
                             f"| {k['fa']:.1f} | {cells} |")
    if any("named" in r for r in doc["models"].values()):
        lines += ["", "`Misc_314` (a test frame, recorded, not chosen on), detections without and with merging:", ""]
        for model, r in doc["models"].items():
            for m, runs in r.get("named", {}).get("Misc_314", {}).items():
                for key, targets in runs.items():
                    desc = "; ".join(f"({t['x']:.1f}, {t['y']:.1f}) area {t['area']} box {tuple(t['bbox'])}"
                                     for t in targets)
                    lines.append(f"- `{model}`, pad {m}, {key}: {len(targets)} — {desc}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["sgem_unet_t.sirst", "sgem_unet.sirst"])
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    ap.add_argument("--datasets", type=Path, default=Path("../shared/datasets"),
                    help="holds SIRST, splits/NUAA-SIRST_50_50, SIRST-corrections/masks (the test list's corrected "
                         "masks, as docs/clutter.md evaluates) and SIRST-V2-background")
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                    help="what to run (default all but test); results are added to OUT.json when it exists")
    ap.add_argument("--negatives-every", type=int, default=1, metavar="K",
                    help="negatives part: every K-th frame in stem order (default 1: all 143)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True, help="output path without suffix")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    root, splits = args.datasets / "SIRST", args.datasets / "splits" / "NUAA-SIRST_50_50"
    sirst = open_dataset(root, split_file=splits / "train.txt")
    negatives = open_negatives(args.datasets / "SIRST-V2-background", "train")
    test = open_dataset(root, split_file=splits / "test.txt", mask_dir=args.datasets / "SIRST-corrections" / "masks")
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    path = args.out.parent / f"{args.out.name}.json"  # what save_report writes
    doc: dict = json.loads(path.read_text()) if path.is_file() else {"commands": [], "models": {}}
    if doc.get("modes", args.modes) != args.modes:
        raise SystemExit(f"{path}: made with pad modes {doc['modes']}, not {args.modes}: give another --out")
    doc.update(modes=args.modes, new_pad=STRIDE_PAD_MODE, merge_distance=MERGE_DISTANCE)
    for name in args.models:
        p = PaddedPredictor.from_pretrained(name, device="cpu")
        r = doc["models"].setdefault(name, {})
        if "sirst" in args.parts:
            r["sirst_train"] = run_sirst_border(p, args.modes, sirst)
        if "negatives" in args.parts:
            r["negatives_train"] = run_negatives_border(p, args.modes, negatives, args.negatives_every)
        if "fragments" in args.parts:
            r["fragments"] = run_fragments(p, sirst)
        if "test" in args.parts:
            r["test"] = run_test(p, args.modes, test)
        if "named" in args.parts:
            r["named"] = run_named(p, args.modes, test)
        print(f"{name}: done after {time.perf_counter() - start:.0f} s", flush=True)
    doc["commands"].append({"command": command, "parts": f"{', '.join(args.parts)} of {', '.join(args.models)}",
                            "machine": f"{platform.processor() or platform.machine()}, {args.threads} thread(s)",
                            "seconds": time.perf_counter() - start})
    text = "\n".join(markdown(doc)) + "\n"
    save_report(doc, text, args.out)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
