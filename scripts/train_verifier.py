"""Train the candidate verifier shipped as ``verifier.sirst`` (docs/verify.md), in two stages.

    PYTHONPATH=src python scripts/train_verifier.py mine --model sgem_unet_t.sirst   # once per detector
    PYTHONPATH=src python scripts/train_verifier.py mine --model tophat
    PYTHONPATH=src python scripts/train_verifier.py mine --model mask                 # mask + synthetic only
    PYTHONPATH=src python scripts/train_verifier.py train --name verifier.sirst   # → src/irstd/weights/

Tried in a second round (docs/verify.md, not in the shipped verifier):

    PYTHONPATH=src python scripts/train_verifier.py mine --model sgem_unet.sirst --thresholds 0.5 0.3
    PYTHONPATH=src python scripts/train_verifier.py mine --model sgem_unet_t.sirst --plant 6 40  # dim targets planted
    PYTHONPATH=src python scripts/train_verifier.py train --out runs/verify/models/v3.safetensors --planted-share 0.25
    PYTHONPATH=src python scripts/train_verifier.py holdout verifier.sirst runs/verify/models/v3.safetensors

Third round (docs/verify.md): ISTD-sequences seq4 as a *training* sequence (its labelled targets and the
detector's false alarms on it; seq5 stays the independent measurement, never read here):

    PYTHONPATH=src python scripts/train_verifier.py mine --model sgem_unet_t.sirst --sequence seq4
    PYTHONPATH=src python scripts/train_verifier.py train --out runs/verify/models/s1.safetensors --sequence-share 0.3 0.25

``mine`` runs a detector (CPU, fp32, threshold 0.5) over the training data only and caches the labelled
patches under ``runs/verify/cache/`` (an ignored folder): the SIRST 50_50 *train* list (Misc_111 with its
corrected mask), the SIRST-V2 background *train* scene groups, and (``--model mask``) the train masks'
own components and generated scenes (targets and clutter blobs/streaks). The test list, the held-out
background groups and ISTD-sequences are never read, except a sequence named by ``--sequence`` (round 3:
seq4 only, never seq5). ``train`` trains on every cached file, with
the SIRST frames of a fixed 20 % of the train list (and of the generated scenes) kept apart to choose the
threshold, and writes the weights and their model card. ``holdout`` scores verifiers on the kept-apart
frames of every cache file (the same patches for each, so differently trained ones compare).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

DATASETS = Path(os.environ.get("IRSTD_DATASETS") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
CACHE = Path("runs/verify/cache")
CACHE_SIZE = 48  #: cached patch side: room for ±8 px jitter around a 32 px patch


def data_note(files: list[Path]) -> str:
    """The model card's data sentence, from the cache files a verifier was trained on."""
    stems = [p.stem for p in files]

    def detectors(prefix: str) -> str:
        found = sorted({x[len(prefix) + 1:].split("@")[0] for x in stems if x.startswith(prefix + "-")} - {"mask", "label"})
        found = [d for d in found if not d.startswith("planted-")]
        return ", ".join(found[:-1]) + " and " + found[-1] if len(found) > 1 else (found[0] if found else "no detector")

    planted = sorted({x.split("planted-", 1)[1] for x in stems if "planted-" in x})
    parts = ["SIRST v1 (Dai et al., WACV 2021) NUAA-SIRST 50_50 train list: mask components and detector candidates; "
             f"false alarms of {detectors('sirst-train')} on those frames, of {detectors('v2-train')} on the train "
             "scene groups of SIRST-V2 background;"]
    if planted:
        parts.append(f"dim targets planted in both and the finds and false alarms of {', '.join(planted)} on them;")
    parts.append("generated scenes (targets, clutter blobs/streaks, tophat candidates).")
    if any(x.startswith("seq") for x in stems):
        parts.append(f"ISTD-sequences seq4 (its labelled targets, the candidates of {detectors('seq4')} on it): a "
                     "training sequence. Never the test list, the held-out groups or seq5.")
    else:
        parts.append("Never the test list, the held-out groups or ISTD-sequences.")
    return " ".join(parts + ["Research datasets: research use only, see their releases"])


def sirst_train():
    from irstd.data import open_dataset

    return open_dataset(DATASETS / "SIRST", split_file=DATASETS / "splits/NUAA-SIRST_50_50/train.txt",
                        mask_dir=DATASETS / "SIRST-corrections/masks", normalization=(0.0, 1.0))


def mine(model: str, n_synthetic: int, thresholds: tuple[float, ...] = (0.5,)) -> None:
    from irstd.data import open_negatives
    from irstd.inference import Predictor
    from irstd.verify.mining import Examples, examples_of_frame

    CACHE.mkdir(parents=True, exist_ok=True)
    data = sirst_train()
    if model == "mask":
        ex = Examples.empty(CACHE_SIZE)
        for i, name in enumerate(data.names):
            frame, mask = data.load_raw(i)
            ex.extend(examples_of_frame(name, frame, [], mask, CACHE_SIZE))
        save(ex, "sirst-train", "mask")
        save(synthetic_examples(n_synthetic), "synthetic", "scenes")
        return
    predictor = Predictor.from_checkpoint(model, device="cpu", threshold=0.5)
    # one probability map per frame, its candidates at every threshold (a lower one: harder false alarms)
    sirst = {t: Examples.empty(CACHE_SIZE) for t in thresholds}
    t0 = time.time()
    for i, name in enumerate(data.names):
        frame, mask = data.load_raw(i)
        prob = predictor.probabilities([frame])[0]
        for t, ex in sirst.items():
            ex.extend(examples_of_frame(name, frame, predictor.prediction(prob, t).targets, mask, CACHE_SIZE))
    for t, ex in sirst.items():
        print(f"{model}@{t:g} sirst-train: {len(ex)} patches ({int(ex.labels.sum())} targets), "
              f"{time.time() - t0:.0f} s", flush=True)
        save(ex, "sirst-train", _tag(model, t))
    neg = open_negatives(DATASETS / "SIRST-V2-background", "train")
    bg = {t: Examples.empty(CACHE_SIZE) for t in thresholds}
    t0 = time.time()
    for i, f in enumerate(neg):
        frame = neg.load(i)
        prob = predictor.probabilities([frame])[0]
        for t, ex in bg.items():
            targets = predictor.prediction(prob, t).targets[:200]  # a noisy map can hold thousands: 200 per frame
            ex.extend(examples_of_frame(f.stem, frame, targets, None, CACHE_SIZE))
    for t, ex in bg.items():
        print(f"{model}@{t:g} v2-train: {len(ex)} false alarms, {time.time() - t0:.0f} s", flush=True)
        save(ex, "v2-train", _tag(model, t))


def mine_planted(model: str, per_sirst: int, per_background: int) -> None:
    """Dim targets planted into the SIRST train frames (away from their targets) and the background train
    frames (``irstd.verify.planting``, a seed per frame name: the same planted frames for every detector),
    then the detector on them: the planted targets it finds are positives, its false alarms negatives."""
    import zlib

    from irstd.data import open_negatives
    from irstd.inference import Predictor
    from irstd.verify.mining import Examples, examples_of_planted
    from irstd.verify.planting import plant_targets

    predictor = Predictor.from_checkpoint(model, device="cpu", threshold=0.5)
    data = sirst_train()
    neg = open_negatives(DATASETS / "SIRST-V2-background", "train")
    frames = [(name, lambda i=i: data.load_raw(i), per_sirst) for i, name in enumerate(data.names)]
    frames += [(f.stem, lambda i=i: (neg.load(i), None), per_background) for i, f in enumerate(neg)]
    out = {"sirst-train": Examples.empty(CACHE_SIZE), "v2-train": Examples.empty(CACHE_SIZE)}
    t0 = time.time()
    n_planted = 0
    for k, (name, load, n) in enumerate(frames):
        frame, mask = load()
        planted, pmask, blobs = plant_targets(frame, [PLANT_STREAM, zlib.crc32(name.encode())], n, avoid=mask)
        n_planted += len(blobs)
        ex = examples_of_planted(name, planted, predictor.predict(planted)[0].targets[:200], pmask, mask, CACHE_SIZE)
        out["sirst-train" if k < len(data.names) else "v2-train"].extend(ex)
    for source, ex in out.items():
        found = sum(s.endswith(":planted+") for s in ex.source)
        print(f"{model} planted {source}: {len(ex)} patches, {found} planted positives, "
              f"{time.time() - t0:.0f} s ({n_planted} planted in all)", flush=True)
        save(ex, source, f"planted-{model}")


def mine_sequence(model: str, seq: str, thresholds: tuple[float, ...]) -> None:
    """A point-labelled ISTD sequence as training data: each label's own patch and the detector's candidates
    labelled against it (``irstd.verify.mining.examples_of_points``: within 4 px a target, beyond 8 px
    clutter). The detections come from ``benchmarks/tracking_sequences.py``'s cache (``runs/tracking/``,
    thresholds 0.5 and its low one) when it exists, else from the predictor at ``thresholds``."""
    from PIL import Image

    from irstd.tracking.evaluation import read_point_labels
    from irstd.verify.mining import Examples, examples_of_points

    if seq == "seq5":
        raise SystemExit("seq5 is the independent sequence measurement: never mined for training")
    root = DATASETS / "ISTD-sequences"
    files = sorted((root / seq).glob("*.png"), key=lambda f: int(f.stem))
    labels = read_point_labels(root / "labels" / f"{seq}.txt")  # (F, 2) x, y
    frames = [np.asarray(Image.open(f)) for f in files]
    frames = [f if f.ndim == 2 else f[..., 0] for f in frames]
    cached = Path("runs/tracking") / f"detections-{model}-{seq}.json"
    if cached.is_file():
        from irstd.inference import Target

        c = json.loads(cached.read_text())
        per_t = {0.5: c["raw"], float(c["low"]): c["low_targets"]}
        per_t = {t: [[Target(x, y, int(a), (int(x), int(y), int(x), int(y)), pk) for x, y, a, pk in d] for d in v]
                 for t, v in per_t.items()}
        print(f"{model} {seq}: detections from {cached} at {sorted(per_t)}", flush=True)
    else:
        from irstd.inference import Predictor

        predictor = Predictor.from_checkpoint(model, device="cpu", threshold=0.5)
        per_t = {t: [] for t in thresholds}
        for frame in frames:
            prob = predictor.probabilities([frame])[0]
            for t, v in per_t.items():
                v.append(predictor.prediction(prob, t).targets[:200])
    own = Examples.empty(CACHE_SIZE)
    for f, frame, xy in zip(files, frames, labels):
        own.extend(examples_of_points(f"{seq}/{f.stem}", frame, [], xy[None], CACHE_SIZE, with_labels=True))
    save(own, seq, "label")
    for t, dets in per_t.items():
        ex = Examples.empty(CACHE_SIZE)
        for f, frame, xy, d in zip(files, frames, labels, dets):
            ex.extend(examples_of_points(f"{seq}/{f.stem}", frame, d, xy[None], CACHE_SIZE))
        save(ex, seq, _tag(model, t))


def fuse(model: str, verifier: str, seq: str | None, out: str, keep: float = 0.99) -> None:
    """Fit :class:`irstd.verify.fusion.FusedVerifier` (verifier logit, detector peak, area) on the kept-apart
    fifth of the training frames only (SIRST train, background train groups, ``seq`` when given; the
    verifier never trained on them): ``model``'s candidates at 0.5, labelled as in ``mine``; threshold:
    the highest keeping ``keep`` of their targets, at most 0.5."""
    from irstd.data import open_negatives
    from irstd.inference import Predictor, Target
    from irstd.verify import load_verifier
    from irstd.verify.fusion import FusedVerifier, fit_fusion, fusion_features
    from irstd.verify.mining import FAR, HIT, label_candidates
    from irstd.verify.training import is_kept_apart

    ver = load_verifier(verifier)
    predictor = Predictor.from_checkpoint(model, device="cpu", threshold=0.5)
    feats, labels, src = [], [], []

    def add(frame, targets, lab, kind):
        ok = lab >= 0
        targets = [t for t, k in zip(targets, ok) if k]
        if targets:
            feats.append(fusion_features(ver.scores(frame, targets), [t.peak for t in targets], [t.area for t in targets]))
            labels.append(lab[ok])
            src.extend([kind] * len(targets))

    data = sirst_train()
    for i, name in enumerate(data.names):
        if is_kept_apart(name):
            frame, mask = data.load_raw(i)
            tg = predictor.predict(frame)[0].targets
            add(frame, tg, label_candidates(tg, mask), "sirst")
    neg = open_negatives(DATASETS / "SIRST-V2-background", "train")
    for i, f in enumerate(neg):
        if is_kept_apart(f.stem):
            frame = neg.load(i)
            tg = predictor.predict(frame)[0].targets[:200]
            add(frame, tg, np.zeros(len(tg), np.int8), "background")
    if seq:
        from PIL import Image

        from irstd.tracking.evaluation import read_point_labels

        root = DATASETS / "ISTD-sequences"
        files = sorted((root / seq).glob("*.png"), key=lambda f: int(f.stem))
        pts = read_point_labels(root / "labels" / f"{seq}.txt")
        cached = json.loads((Path("runs/tracking") / f"detections-{model}-{seq}.json").read_text())["raw"]
        for f, xy, d in zip(files, pts, cached):
            if is_kept_apart(f"{seq}/{f.stem}"):
                frame = np.asarray(Image.open(f))
                frame = frame if frame.ndim == 2 else frame[..., 0]
                tg = [Target(x, y, int(a), (int(x), int(y), int(x), int(y)), pk) for x, y, a, pk in d]
                dist = np.asarray([np.hypot(t.x - xy[0], t.y - xy[1]) for t in tg])
                add(frame, tg, np.where(dist <= HIT, 1, np.where(dist > FAR, 0, -1)).astype(np.int8), seq)
    x, y, src = np.concatenate(feats), np.concatenate(labels).astype(np.float64), np.asarray(src)
    w, b = fit_fusion(x, y)
    s = 1.0 / (1.0 + np.exp(-(x @ w + b)))
    threshold = float(min(0.5, max(float(np.quantile(s[y == 1], 1.0 - keep)), 1e-3)))
    figs = {}
    for kind in sorted(set(src)):
        m = src == kind
        for name, sel, kept in (("targets kept", m & (y == 1), True), ("clutter rejected", m & (y == 0), False)):
            if sel.any():
                for label, sc in (("verifier", np.exp(x[sel, 0]) / (1 + np.exp(x[sel, 0])) >= ver.threshold),
                                  ("fused", s[sel] >= threshold)):
                    share = np.mean(sc) if kept else np.mean(~sc)
                    figs[f"{kind} {name} ({label})"] = f"{100 * share:.1f} % of {int(sel.sum())}"
    card = {"verifier": str(verifier), "model": model, "sequence": seq, "threshold_rule": f"keep {keep} of the targets",
            "fit_on": "kept-apart fifth of the training frames", "kept_apart": figs,
            "features": ["verifier logit", "detector peak logit", "log area"]}
    FusedVerifier(ver, w, b, threshold).save(out, card)
    print(json.dumps({"weights": w.tolist(), "bias": b, "threshold": threshold, **card}, indent=1))


#: the random stream of the planted targets (fixed: the cache is reproducible)
PLANT_STREAM = 35


def _tag(model: str, threshold: float) -> str:
    """Cache name of a detector's candidates: the model, and ``@t`` below the default threshold 0.5."""
    return model if threshold == 0.5 else f"{model}@{threshold:g}"


def synthetic_examples(n: int):
    """Generated scenes (their own random stream): each target a positive, each clutter blob/streak a negative,
    plus tophat's candidates labelled against the mask."""
    from irstd.data.synthetic import generate_scene
    from irstd.data.synthetic_dataset import TRAIN_STREAM
    from irstd.inference import Predictor
    from irstd.models import create_model
    from irstd.verify.mining import Examples, examples_of_frame
    from irstd.verify.patches import extract_patches

    tophat = Predictor(create_model("tophat"), device="cpu")
    ex = Examples.empty(CACHE_SIZE)
    for i in range(n):
        img, mask, info = generate_scene(np.random.SeedSequence([TRAIN_STREAM, 77, i]), size=(256, 256))
        ex.extend(examples_of_frame(f"synth{i}", img, tophat.predict(img)[0].targets[:50], mask, CACHE_SIZE, "tophat"))
        clutter = [(c["center"][1], c["center"][0]) for c in info["clutter"]
                   if not mask[min(c["center"][0], 255), min(c["center"][1], 255)]]
        if clutter:
            ex.extend(Examples(extract_patches(img, clutter, CACHE_SIZE), np.zeros(len(clutter), np.uint8),
                               [f"synth{i}:clutter-"] * len(clutter)))
    return ex


def save(ex, source: str, model: str) -> None:
    path = CACHE / f"{source}-{model}.npz"
    np.savez_compressed(path, patches=ex.patches.astype(np.float32), labels=ex.labels, source=np.asarray(ex.source))
    print(f"wrote {path}: {len(ex)} patches, {int(ex.labels.sum())} targets", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="stage", required=True)
    m = sub.add_parser("mine")
    m.add_argument("--model", required=True, help="detector (model spec) or 'mask' (masks and generated scenes)")
    m.add_argument("--synthetic", type=int, default=400, help="generated scenes with --model mask")
    m.add_argument("--threads", type=int, default=1)
    m.add_argument("--plant", type=int, nargs=2, metavar=("PER_SIRST", "PER_BACKGROUND"),
                   help="plant this many dim targets per SIRST train / background train frame and mine the "
                        "detector's finds and false alarms on them instead")
    m.add_argument("--thresholds", type=float, nargs="+", default=[0.5],
                   help="detector thresholds to mine candidates at (one probability map per frame)")
    m.add_argument("--sequence", help="mine this point-labelled ISTD sequence (e.g. seq4; it becomes training data)")
    t = sub.add_parser("train")
    t.add_argument("--name", help="ship as this name: src/irstd/weights/<name with - for .>.safetensors and its row "
                                   "in src/irstd/weights/verifiers.json")
    t.add_argument("--out", help="write the weights here instead (not shipped)")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--patch-size", type=int, default=32)
    t.add_argument("--width", type=int, default=16)
    t.add_argument("--jitter", type=int, default=3)
    t.add_argument("--keep", type=float, default=0.99, help="share of validation targets the threshold keeps")
    t.add_argument("--keep-planted", type=float, default=None,
                   help="share of validation planted targets the threshold keeps as well")
    t.add_argument("--max-threshold", type=float, default=0.5)
    t.add_argument("--planted-share", type=float, default=0.4, help="share of each epoch's targets that are planted")
    t.add_argument("--tophat-share", type=float, default=0.25, help="share of each epoch's clutter from tophat")
    t.add_argument("--sequence-share", type=float, nargs=2, default=(0.0, 0.0), metavar=("TARGETS", "CLUTTER"),
                   help="share of each epoch's targets / clutter from a mined sequence (seq*.npz cache files)")
    t.add_argument("--exclude", nargs="*", default=[], help="cache files (glob patterns) left out")
    t.add_argument("--match-rejection", metavar="VERIFIER",
                   help="threshold rule instead of --keep: reject the share of the kept-apart clutter of "
                        "--match-files that this verifier (name or file) rejects at its own threshold")
    t.add_argument("--match-files", nargs="+", default=["v2-train-sgem_unet_t.sirst.npz", "v2-train-sgem_unet.sirst.npz"],
                   help="cache files (glob patterns) whose kept-apart clutter --match-rejection matches")
    fz = sub.add_parser("fuse", help="fit the verifier score + detector peak/area fusion (kept-apart frames)")
    fz.add_argument("--model", required=True)
    fz.add_argument("--verifier", required=True)
    fz.add_argument("--sequence", default=None)
    fz.add_argument("--out", required=True, help="JSON file of the fused verifier")
    fz.add_argument("--threads", type=int, default=1)
    h = sub.add_parser("holdout", help="a verifier's figures on the kept-apart frames of every cache file")
    h.add_argument("verifiers", nargs="+", help="names or files")
    h.add_argument("--threshold", type=float, default=None)
    h.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.stage == "holdout":
        from irstd.verify import load_verifier
        from irstd.verify.training import holdout_figures, load_cache

        sets = load_cache(sorted(CACHE.glob("*.npz")))
        for v in args.verifiers:
            print(json.dumps({"verifier": v, **holdout_figures(load_verifier(v), sets, args.threshold)}, indent=1))
        return 0
    if args.stage == "fuse":
        fuse(args.model, args.verifier, args.sequence, args.out)
        return 0
    if args.stage == "mine":
        if args.sequence:
            mine_sequence(args.model, args.sequence, tuple(args.thresholds))
        elif args.plant:
            mine_planted(args.model, *args.plant)
        else:
            mine(args.model, args.synthetic, tuple(args.thresholds))
    else:
        train(args)
    return 0


def train(args: argparse.Namespace) -> None:
    from irstd.verify.training import TrainSettings, load_cache, train_verifier

    files = [p for p in sorted(CACHE.glob("*.npz")) if not any(p.match(x) for x in args.exclude)]
    sets = load_cache(files)
    seq_t, seq_c = args.sequence_share
    rest = 1.0 - args.tophat_share - seq_c
    settings = TrainSettings(epochs=args.epochs, seed=args.seed, keep=args.keep, patch_size=args.patch_size,
                             width=args.width, jitter=args.jitter, keep_planted=args.keep_planted,
                             max_threshold=args.max_threshold,
                             target_share={"target": 1.0 - args.planted_share - seq_t, "planted": args.planted_share,
                                           "sequence": seq_t},
                             pool_share={"false_alarm": rest * 2 / 3, "tophat": args.tophat_share,
                                         "generated": rest / 3, "sequence_clutter": seq_c})
    from irstd.verify.verifier import VERIFIER_TABLE

    out = Path(args.out) if args.out else VERIFIER_TABLE.parent / f"{args.name.replace('.', '-')}.safetensors"
    t0 = time.time()
    card = train_verifier(sets, settings, out)
    if args.match_rejection:
        card = match_rejection(out, card, args.match_rejection, sets,
                               [s for s, p in zip(sets, files) if any(p.match(x) for x in args.match_files)])
    card.update({
        "train_command": "PYTHONPATH=src python " + shlex.join(["scripts/train_verifier.py", *sys.argv[1:]]),
        "train_seconds": round(time.time() - t0, 1),
        "machine": f"{platform.machine()} {platform.processor() or ''} CPU, {args.threads} thread(s), "
                   f"torch {torch_version()}".replace("  ", " "),
        "cache_files": [p.name for p in files],
        "data": data_note(files),
    })
    print(json.dumps({k: v for k, v in card.items() if k != "history"}, indent=1))
    if args.name:
        import hashlib

        table = json.loads(VERIFIER_TABLE.read_text()) if VERIFIER_TABLE.is_file() else {"verifiers": {}}
        table["verifiers"][args.name] = {"file": out.name, "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
                                         **{k: v for k, v in card.items() if k != "history"}}
        VERIFIER_TABLE.write_text(json.dumps(table, indent=1) + "\n")
        print(f"shipped {args.name}: {out} and its row in {VERIFIER_TABLE}")


def match_rejection(out: Path, card: dict, reference: str, sets: list, match_sets: list) -> dict:
    """Re-threshold the verifier written at ``out`` so that it rejects the share of the kept-apart clutter of
    ``match_sets`` that ``reference`` rejects (``irstd.verify.training.matched_threshold``); rewrites it with
    its kept-apart figures on ``sets`` at the new threshold (``val``; the keep rule's stay as ``val_keep_rule``)."""
    from irstd.verify import load_verifier
    from irstd.verify.training import holdout_figures, matched_threshold

    if not match_sets:
        raise SystemExit("--match-files matched no cache file")
    verifier = load_verifier(out)
    threshold, share = matched_threshold(verifier, load_verifier(reference), match_sets)
    names = [f"{s.name}.npz" for s in match_sets]
    card = {**card, "threshold": threshold, "threshold_rule": {
        "rule": f"reject the share of the kept-apart clutter that {reference} rejects at its own threshold",
        "files": names, "rejected_share": round(share, 4),
        "keep_rule_threshold": card["threshold"]}, "val_keep_rule": card["val"]}
    verifier.threshold = threshold
    card["val"] = holdout_figures(verifier, sets)
    verifier.save(out, {k: v for k, v in card.items() if k != "history"})
    print(f"threshold {threshold:.4f}: rejects {100 * share:.1f} % of the kept-apart clutter of "
          f"{', '.join(names)}, as {reference} does", flush=True)
    return card


def torch_version() -> str:
    import torch

    return torch.__version__


if __name__ == "__main__":
    sys.exit(main())
