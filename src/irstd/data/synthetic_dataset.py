"""The synthetic scenes as a dataset: generated on the fly, or written to disk in the plain layout.

Item ``i`` of stream ``s`` is ``generate_scene((seed, s, i))``: deterministic per index, whatever the
worker or the order. Streams keep splits disjoint (:data:`SPLIT_STREAMS`; every stream number is here). Frames are rounded to
integer grey levels like a file would be, so ``write_synthetic`` followed by ``open_dataset`` gives the
same pixels as the on-the-fly dataset.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ..core.errors import DataError
from .io import save_image, save_mask
from .items import Sample, Transform, check_normalization, floor_std, make_item
from .layouts import Layout
from .synthetic import generate_scene
from .validate import PairFiles, Problem

__all__ = ["SyntheticDataset", "open_synthetic", "write_synthetic", "SPLIT_STREAMS", "DEFAULT_SIZES", "TRAIN_STREAM",
           "TEST_STREAM", "VAL_STREAM", "DETECT_STREAM"]

log = logging.getLogger(__name__)

#: the scene generator's random streams (``generate_scene((seed, stream, i))``), one per use so that no
#: two uses share a scene: training, test and validation splits, and the demo's detection frames
TRAIN_STREAM, TEST_STREAM, VAL_STREAM, DETECT_STREAM = 0, 1, 2, 3
#: split name → random stream; train, trainval and all share one
SPLIT_STREAMS = {"train": TRAIN_STREAM, "trainval": TRAIN_STREAM, "all": TRAIN_STREAM, "test": TEST_STREAM,
                 "val": VAL_STREAM}
#: the stem prefix of a stream's scenes
_PREFIXES = {TRAIN_STREAM: "train", TEST_STREAM: "test", VAL_STREAM: "val"}
#: default number of frames per split when none is given (= ``irstd data synth OUT --n 500``)
DEFAULT_SIZES = {"train": 400, "trainval": 400, "all": 400, "test": 100, "val": 100}
_REFERENCE_SEED = 20240101  # scenes used for the normalisation statistics (independent of ``seed``)
_REFERENCE_COUNT = 24


def _scene_key(kw: dict[str, Any]) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in kw.items()))


@lru_cache(maxsize=8)
def _reference_stats(key: tuple) -> tuple[float, float]:
    """Mean/std over fixed reference scenes with the same generator settings (same for every seed)."""
    kw = dict(key)
    frames = [np.rint(generate_scene((_REFERENCE_SEED, i), **kw)[0]).astype(np.float64)
              for i in range(_REFERENCE_COUNT)]
    x = np.stack(frames)
    return float(x.mean()), floor_std(float(x.std()))


class SyntheticDataset(Dataset):
    """``n`` generated scenes with the :class:`~irstd.data.items.Sample` of :class:`~irstd.data.IRSTDDataset`.

    Extra keyword arguments go to :func:`~irstd.data.synthetic.generate_scene` (``n_targets``,
    ``area``, ``scr``, ``background``, ``clutter``, ``noise``, ``bit_depth``).
    """

    generated = True

    def __init__(self, n: int, seed: int = 0, size: int | tuple[int, int] = 256, *, stream: int = 0,
                 transform: Transform | None = None, normalization: tuple[float, float] | None = None,
                 prefix: str = "synth",
                 **scene_kw: Any) -> None:
        if n < 1:
            raise DataError(f"a synthetic dataset needs n >= 1 frames, got {n}")
        self.n, self.seed, self.stream, self.prefix = int(n), int(seed), int(stream), prefix
        self.size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.scene_kw = {"size": self.size, **scene_kw}
        generate_scene((0, 0, 0), **self.scene_kw)  # fail now on bad settings, not inside a worker
        self.transform = transform
        self.normalization: tuple[float, float] = (
            check_normalization(normalization) if normalization is not None
            else _reference_stats(_scene_key(self.scene_kw)))
        # the attributes of IRSTDDataset, so that code written for folders runs on generated data
        self.layout = Layout("synthetic", Path("synthetic"))
        self.problems: list[Problem] = []
        self.skipped = 0
        self.mask_overrides: list[tuple[str, Path]] = []
        uri = f"synthetic:{self.seed}/{self.stream}"
        self.items: list[PairFiles] = [PairFiles(Path(f"{uri}/{i}"), Path(f"{uri}/{i}"), self.name(i))
                                       for i in range(self.n)]

    def __len__(self) -> int:
        return self.n

    def name(self, index: int) -> str:
        """Stem of frame ``index`` (also its file name when written to disk)."""
        return f"{self.prefix}_{index:05d}"

    @property
    def names(self) -> list[str]:
        """Stems in item order."""
        return [self.name(i) for i in range(self.n)]

    def scene(self, index: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Frame ``index``: (image float32 H×W rounded to integer levels, mask bool H×W, info)."""
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} frames")
        image, mask, info = generate_scene((self.seed, self.stream, index), **self.scene_kw)
        return np.rint(image), mask, info

    def __getitem__(self, index: int) -> Sample:
        image, mask, _ = self.scene(index)
        item = make_item(image, mask, self.name(index), self.items[index].image, self.normalization)
        return self.transform(item) if self.transform is not None else item

    def __repr__(self) -> str:
        return f"SyntheticDataset(n={self.n}, seed={self.seed}, stream={self.stream}, size={self.size})"


def open_synthetic(split: str = "train", n: int | None = None, seed: int = 0, *,
                   transform: Transform | None = None,
                   normalization: tuple[float, float] | None = None, **scene_kw: Any) -> SyntheticDataset:
    """The built-in synthetic dataset's split (train 400 / test 100 frames by default, disjoint)."""
    if split not in SPLIT_STREAMS:
        raise DataError(f"synthetic data has no split {split!r}; use one of {', '.join(SPLIT_STREAMS)}")
    stream = SPLIT_STREAMS[split]
    prefix = _PREFIXES[stream]
    return SyntheticDataset(n or DEFAULT_SIZES[split], seed, stream=stream, transform=transform,
                            normalization=normalization, prefix=prefix, **scene_kw)


def write_synthetic(out: str | Path, n: int = 500, *, seed: int = 0, test_fraction: float = 0.2,
                    overwrite: bool = False, **scene_kw: Any) -> dict[str, Any]:
    """Write ``n`` frames in the plain layout: ``images/``, ``masks/``, ``train.txt``, ``test.txt``.

    Train frames are ``open_synthetic("train", seed=seed)``'s, test frames ``open_synthetic("test")``'s,
    so on-disk and on-the-fly data match. Also writes ``synthetic.json`` (settings and per-frame
    targets). Refuses a non-empty folder unless ``overwrite``. Returns the summary written there.
    """
    out = Path(out).expanduser()
    if not 0.0 <= test_fraction < 1.0:
        raise DataError(f"test_fraction must be in [0, 1), got {test_fraction}")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DataError(f"{out}: folder is not empty (pass --overwrite to write into it)")
    n_test = int(round(n * test_fraction))
    n_train = n - n_test
    if n_train < 1:
        raise DataError(f"n={n} leaves no training frame with test_fraction={test_fraction}")
    bit_depth = int(scene_kw.get("bit_depth", 8))
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    frames: dict[str, Any] = {}
    for split, count in (("train", n_train), ("test", n_test)):
        if count == 0:
            (out / f"{split}.txt").write_text("")
            continue
        ds = open_synthetic(split, count, seed, normalization=(0.0, 1.0), **scene_kw)
        for i in range(count):
            image, mask, info = ds.scene(i)
            name = ds.name(i)
            save_image(out / "images" / f"{name}.png", image, bit_depth=bit_depth)
            save_mask(out / "masks" / f"{name}.png", mask)
            frames[name] = {"background": info["background"],
                            "targets": [{k: t[k] for k in ("center", "area", "shape", "scr_measured")}
                                        for t in info["targets"]]}
        (out / f"{split}.txt").write_text("".join(f"{ds.name(i)}\n" for i in range(count)))
        log.info("wrote %d %s frames to %s", count, split, out)
    summary = {"generator": "irstd.data.synthetic", "seed": seed, "train": n_train, "test": n_test,
               "settings": {k: v for k, v in scene_kw.items()}, "frames": frames}
    (out / "synthetic.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary
