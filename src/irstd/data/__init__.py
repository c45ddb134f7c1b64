"""Datasets: every standard IRSTD folder layout, honest validation, and synthetic scenes.

Typical use::

    from irstd.data import open_dataset, Compose, RandomCrop, RandomFlip, build_loader, pad_collate
    train = open_dataset("SIRST", "train", transform=Compose([RandomCrop(256, 0.5), RandomFlip()]))
    test = open_dataset("SIRST", "test", normalization=train.normalization, skip_invalid=True)
    loader = build_loader(test, 4, shuffle=False, collate_fn=pad_collate(model.stride))

``open_dataset(None)`` (or ``"synthetic"``) gives the built-in synthetic dataset. Every dataset yields
:class:`Sample` dicts built by :func:`make_item`; :func:`normalize` is the one ``(x − mean) / std``
(inference uses it too, with :func:`frame_normalization` when a model stores no statistics).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

if TYPE_CHECKING:
    from .dataset import IRSTDDataset, open_dataset
    from .inspect import InspectReport, inspect_dataset
    from .io import IMAGE_EXTENSIONS, load_image, load_mask, read_header, read_split_file, save_image, save_mask
    from .items import MIN_STD, Sample, frame_normalization, make_item, normalize
    from .layouts import Layout, SplitSpec, detect_layout
    from .loader import PadCollate, build_loader, pad_collate
    from .negatives import NegativeFrame, NegativeSet, negatives_split, open_negatives, scene_group
    from .stats import compute_normalization
    from .synthetic import BACKGROUNDS, generate_scene
    from .synthetic_dataset import (DETECT_STREAM, SPLIT_STREAMS, TEST_STREAM, TRAIN_STREAM, VAL_STREAM, SyntheticDataset,
                                    open_synthetic, write_synthetic)
    from .transforms import Compose, RandomCrop, RandomFlip, RandomRot90
    from .validate import PairFiles, Problem

__all__ = [
    "BACKGROUNDS",
    "DETECT_STREAM",
    "SPLIT_STREAMS",
    "TEST_STREAM",
    "TRAIN_STREAM",
    "VAL_STREAM",
    "Compose",
    "IMAGE_EXTENSIONS",
    "IRSTDDataset",
    "InspectReport",
    "Layout",
    "MIN_STD",
    "NegativeFrame",
    "NegativeSet",
    "PadCollate",
    "PairFiles",
    "Problem",
    "RandomCrop",
    "RandomFlip",
    "RandomRot90",
    "Sample",
    "SplitSpec",
    "SyntheticDataset",
    "build_loader",
    "compute_normalization",
    "detect_layout",
    "frame_normalization",
    "generate_scene",
    "inspect_dataset",
    "load_image",
    "load_mask",
    "make_item",
    "negatives_split",
    "normalize",
    "open_dataset",
    "open_negatives",
    "open_synthetic",
    "pad_collate",
    "read_header",
    "read_split_file",
    "save_image",
    "save_mask",
    "scene_group",
    "write_synthetic",
]

__getattr__, __dir__ = lazy_exports(__name__)
