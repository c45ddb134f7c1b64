"""Train a verifier from cached labelled patches (``scripts/train_verifier.py`` writes the cache).

Each cache file holds raw patches larger than the verifier's (e.g. 48 px for 32): training crops a
``patch_size`` window at a random offset (jitter: the detector's centroid is not the target's), flips and
rotates it by multiples of 90°, and sometimes bends its contrast (a gamma on the min–max scaled patch) or
adds noise; then the same per-patch normalisation as inference. Every epoch draws a fixed number of
patches, half targets and half clutter, the clutter split between the learned detectors' false alarms,
tophat's candidates and generated clutter (``pool_share``), so the tens of thousands of tophat candidates
on real backgrounds do not drown the learned detectors' false alarms.

Patches of a fixed fifth of the frames (by a hash of the frame name) are kept apart: the threshold is
the highest that keeps ``keep`` of the real target patches among them (SIRST, and a mined training
sequence's), and at most 0.5.
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..core.seeding import seed_everything
from .net import VerifierNet
from .patches import PATCH_SIZE, normalise_patches
from .verifier import Verifier

__all__ = ["PatchSet", "TrainSettings", "holdout_figures", "is_kept_apart", "load_cache", "train_verifier"]

log = logging.getLogger(__name__)


@dataclass
class PatchSet:
    """Cached raw patches (N, C, C) with labels (N,) and ``<frame>:<kind><+|->`` sources, from one file."""

    name: str
    patches: np.ndarray
    labels: np.ndarray
    source: np.ndarray

    @property
    def frames(self) -> np.ndarray:
        return np.asarray([s.rsplit(":", 1)[0] for s in self.source])

    @property
    def kept_apart(self) -> np.ndarray:
        """(N,) bool: the patches of the frames kept apart from training (:func:`is_kept_apart`)."""
        return np.asarray([is_kept_apart(f) for f in self.frames], dtype=bool)


@dataclass
class TrainSettings:
    """How :func:`train_verifier` trains (the shipped verifier: these defaults with 20 epochs)."""

    epochs: int = 30
    per_epoch: int = 8000  #: patches drawn per epoch (half targets)
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    width: int = 16
    patch_size: int = PATCH_SIZE
    jitter: int = 3  #: ± pixels of the random crop offset
    keep: float = 0.99  #: share of validation targets the threshold keeps
    seed: int = 0
    #: share of the clutter half of each epoch per pool (renormalised over the pools present)
    pool_share: dict[str, float] = field(default_factory=lambda: {"false_alarm": 0.5, "tophat": 0.25,
                                                                   "generated": 0.25})
    #: share of the target half per pool: real and generated targets, dim targets planted in real frames
    target_share: dict[str, float] = field(default_factory=lambda: {"target": 0.6, "planted": 0.4})
    #: share of the kept-apart planted targets the threshold keeps as well (None: real targets only)
    keep_planted: float | None = None
    max_threshold: float = 0.5  #: the threshold's cap


def load_cache(paths: Sequence[str | Path]) -> list[PatchSet]:
    """The :class:`PatchSet` of each ``.npz`` cache file."""
    out = []
    for p in paths:
        with np.load(p) as z:
            out.append(PatchSet(Path(p).stem, z["patches"], z["labels"].astype(np.uint8), z["source"]))
    return out


def is_kept_apart(frame: str) -> bool:
    """Whether a frame (by name) is in the fixed fifth kept apart from training for the threshold."""
    return zlib.crc32(frame.encode()) % 5 == 0


def _group(set_name: str, source: str, label: int) -> str:
    """Which sampling pool a patch belongs to (``seq*`` cache files: a point-labelled sequence)."""
    if set_name.startswith("seq"):
        return "sequence" if label else "sequence_clutter"
    if label:
        return "planted" if source.endswith(":planted+") else "target"
    if set_name.startswith("synthetic"):
        return "generated"
    return "tophat" if "tophat" in set_name else "false_alarm"


def _pools(sets: list[PatchSet], val: bool) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    patches, labels, groups, real = [], [], [], []
    for s in sets:
        sel = s.kept_apart == val
        patches.append(s.patches[sel])
        labels.append(s.labels[sel])
        groups += [_group(s.name, src, int(l)) for src, l in zip(s.source[sel], s.labels[sel])]
        real.append(np.full(int(sel.sum()), not s.name.startswith("synthetic")))
    g = np.asarray(groups)
    return (np.concatenate(patches), np.concatenate(labels), {k: np.flatnonzero(g == k) for k in set(groups)},
            np.concatenate(real))


def _augment(rng: np.random.Generator, raw: np.ndarray, size: int, jitter: int) -> np.ndarray:
    """(B, C, C) raw patches → (B, size, size) augmented raw patches."""
    b, c = raw.shape[0], raw.shape[1]
    o = (c - size) // 2
    out = np.empty((b, size, size), np.float32)
    for i in range(b):
        dy, dx = rng.integers(-jitter, jitter + 1, size=2)
        p = raw[i, o + dy : o + dy + size, o + dx : o + dx + size]
        p = np.rot90(p, int(rng.integers(4)))
        if rng.random() < 0.5:
            p = p[:, ::-1]
        if rng.random() < 0.3:  # contrast: a gamma on the min–max scaled patch (the normalisation undoes gains)
            lo, hi = float(p.min()), float(p.max())
            if hi > lo:
                p = lo + (hi - lo) * ((p - lo) / (hi - lo)) ** rng.uniform(0.6, 1.6)
        if rng.random() < 0.3:  # sensor noise at a share of the patch's robust spread
            spread = float(np.median(np.abs(p - np.median(p)))) * 1.4826 + 1e-3
            p = p + rng.normal(0, rng.uniform(0.2, 1.0) * spread, p.shape)
        out[i] = p
    return out


def _centre(raw: np.ndarray, size: int) -> np.ndarray:
    o = (raw.shape[1] - size) // 2
    return np.ascontiguousarray(raw[:, o : o + size, o : o + size])


def _epoch_indices(rng: np.random.Generator, pools: dict[str, np.ndarray], n: int,
                   shares: dict[str, float], target_shares: dict[str, float] | None = None) -> np.ndarray:
    """One epoch's patch indices: ``n // 2`` targets split by ``target_shares``, as many clutter patches
    split by ``shares`` (each renormalised over the pools present)."""
    half = n // 2
    picks = []
    for split in (target_shares or {"target": 1.0}, shares):
        present = {k: v for k, v in split.items() if k in pools and len(pools[k])}
        total = sum(present.values())
        for k, share in present.items():
            picks.append(rng.choice(pools[k], int(round(half * share / total))))
    idx = np.concatenate(picks)
    rng.shuffle(idx)
    return idx


@torch.no_grad()
def _scores(net: VerifierNet, raw: np.ndarray, size: int) -> np.ndarray:
    net.eval()
    out = []
    for s in range(0, len(raw), 512):
        x = torch.from_numpy(normalise_patches(_centre(raw[s : s + 512], size)))[:, None]
        out.append(torch.sigmoid(net(x)).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def train_verifier(sets: list[PatchSet], settings: TrainSettings, out: str | Path | None = None) -> dict[str, Any]:
    """Train on the training frames of ``sets``, choose the threshold on the rest, write ``out`` (when given);
    returns the model card (settings, counts, threshold, validation figures, seconds per epoch)."""
    seed_everything(settings.seed)
    rng = np.random.default_rng(settings.seed)
    x_tr, y_tr, pools, _ = _pools(sets, val=False)
    x_va, y_va, pools_va, real_va = _pools(sets, val=True)
    net = VerifierNet(settings.width)
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    steps = settings.epochs * (settings.per_epoch // settings.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, settings.lr, total_steps=steps, pct_start=0.15)
    history = []
    step = 0
    for epoch in range(settings.epochs):
        t0 = time.time()
        net.train()
        idx = _epoch_indices(rng, pools, settings.per_epoch, settings.pool_share, settings.target_share)
        losses = []
        for s in range(0, len(idx) - settings.batch_size + 1, settings.batch_size):
            b = idx[s : s + settings.batch_size]
            x = torch.from_numpy(normalise_patches(_augment(rng, x_tr[b], settings.patch_size, settings.jitter)))[:, None]
            y = torch.from_numpy(y_tr[b].astype(np.float32))
            loss = F.binary_cross_entropy_with_logits(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step < steps - 1:
                sched.step()
            step += 1
            losses.append(loss.item())
        history.append({"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 4), "seconds": round(time.time() - t0, 1)})
        log.info("epoch %d loss %.4f (%.0f s)", epoch + 1, history[-1]["loss"], history[-1]["seconds"])
    p_va = _scores(net, x_va, settings.patch_size)
    # real targets: SIRST masks and detections, and a mined sequence's (its kept-apart fifth of the frames)
    real_pos = p_va[np.intersect1d(np.concatenate([pools_va.get("target", np.zeros(0, int)),
                                                   pools_va.get("sequence", np.zeros(0, int))]), np.flatnonzero(real_va))]
    q = float(np.quantile(real_pos, 1.0 - settings.keep)) if len(real_pos) else 0.5
    if settings.keep_planted is not None and len(pools_va.get("planted", [])):
        q = min(q, float(np.quantile(p_va[pools_va["planted"]], 1.0 - settings.keep_planted)))
    threshold = float(min(settings.max_threshold, max(q, 1e-3)))
    card: dict[str, Any] = {"settings": asdict(settings), "threshold": threshold,
                            "train_patches": {k: int(len(v)) for k, v in pools.items()},
                            "val_patches": {k: int(len(v)) for k, v in pools_va.items()},
                            "val": _val_figures(p_va, y_va, pools_va, real_va, threshold), "history": history,
                            "params": sum(p.numel() for p in net.parameters())}
    verifier = Verifier(net.eval(), threshold, patch_size=settings.patch_size, card=card)
    if out is not None:
        verifier.save(out, {k: v for k, v in card.items() if k != "history"})
    return card


def _val_figures(p: np.ndarray, y: np.ndarray, pools: dict[str, np.ndarray], real: np.ndarray, t: float) -> dict:
    tgt = np.zeros(len(p), bool)
    tgt[pools.get("target", np.zeros(0, int))] = True
    fig: dict[str, Any] = {"real_targets_kept": float(np.mean(p[tgt & real] >= t)) if np.any(tgt & real) else None,
                           "generated_targets_kept": float(np.mean(p[tgt & ~real] >= t)) if np.any(tgt & ~real) else None}
    for k in ("planted", "sequence"):
        if len(pools.get(k, [])):
            fig[f"{k}_targets_kept"] = float(np.mean(p[pools[k]] >= t))
    for k, idx in pools.items():
        if k not in ("target", "planted", "sequence") and len(idx):
            fig[f"{k}_rejected"] = float(np.mean(p[idx] < t))
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in fig.items()}


def holdout_figures(verifier: Verifier, sets: list[PatchSet], threshold: float | None = None) -> dict[str, Any]:
    """A verifier's figures on the kept-apart frames of ``sets``, per cache file: the share of targets kept
    (files with targets) or of clutter rejected, at ``threshold`` (default: its own); the same fixed
    patches for every verifier, so two of them trained on different caches compare on one footing."""
    t = verifier.threshold if threshold is None else threshold
    out: dict[str, Any] = {"threshold": t}
    for s in sets:
        sel = s.kept_apart
        if not sel.any():
            continue
        raw, lab = s.patches[sel], s.labels[sel]
        src = s.source[sel]
        p = _scores(verifier.net, raw, verifier.patch_size)
        planted = np.asarray([x.endswith(":planted+") for x in src])
        for name, m, kept in ((f"{s.name} targets kept", (lab == 1) & ~planted, True),
                              (f"{s.name} planted kept", planted, True),
                              (f"{s.name} clutter rejected", lab == 0, False)):
            if m.any():
                share = float(np.mean(p[m] >= t)) if kept else float(np.mean(p[m] < t))
                out[name] = f"{100 * share:.1f} % of {int(m.sum())}"
    return out


def matched_threshold(verifier: Verifier, reference: Verifier, sets: list[PatchSet]) -> tuple[float, float]:
    """The threshold at which ``verifier`` rejects the same share of the kept-apart clutter patches of ``sets``
    as ``reference`` does at its own threshold: both then sit at one operating point on clutter, and they
    differ in the targets they keep. Returns (threshold, the matched rejected share)."""
    raw = [s.patches[s.kept_apart & (s.labels == 0)] for s in sets]
    raw = np.concatenate(raw) if raw else np.zeros((0, 1, 1), np.float32)
    if not len(raw):
        raise ValueError("no kept-apart clutter patches to match the rejection on")
    share = float(np.mean(_scores(reference.net, raw, reference.patch_size) < reference.threshold))
    # scores below the share's quantile are rejected: the same share of these patches as the reference
    threshold = float(np.quantile(_scores(verifier.net, raw, verifier.patch_size), share))
    return threshold, share
