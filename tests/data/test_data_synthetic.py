"""The synthetic scene generator and the synthetic dataset."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from irstd.data import (BACKGROUNDS, SyntheticDataset, compute_normalization, generate_scene, open_dataset,
                        open_synthetic, write_synthetic)
from irstd.errors import DataError

EIGHT = np.ones((3, 3), dtype=bool)
SEEDS = range(12)


def test_same_seed_same_arrays() -> None:
    a_img, a_mask, a_info = generate_scene(7)
    b_img, b_mask, b_info = generate_scene(7)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_mask, b_mask)
    assert [t["center"] for t in a_info["targets"]] == [t["center"] for t in b_info["targets"]]
    c_img, _, _ = generate_scene(8)
    assert not np.array_equal(a_img, c_img)


def test_scene_format() -> None:
    img, mask, info = generate_scene(0, size=(200, 240))
    assert img.dtype == np.float32 and img.shape == (200, 240)
    assert mask.dtype == bool and mask.shape == (200, 240)
    assert 0 <= img.min() and img.max() <= 255
    assert info["background"] in BACKGROUNDS


@pytest.mark.parametrize("area", [(1, 80), (1, 3), (10, 20), (60, 80)])
def test_masks_match_targets_and_areas_in_range(area: tuple[int, int]) -> None:
    lo, hi = area
    for seed in SEEDS:
        img, mask, info = generate_scene(seed, n_targets=(1, 5), area=area)
        targets = info["targets"]
        assert 1 <= len(targets) <= 5
        labels, n = ndimage.label(mask, structure=EIGHT)
        assert n == len(targets), f"seed {seed}: {n} components for {len(targets)} targets"
        sizes = np.bincount(labels.ravel())[1:]
        assert ((sizes >= lo) & (sizes <= hi)).all(), (seed, sizes)
        assert mask.sum() == sum(t["area"] for t in targets)
        for t in targets:
            assert mask[t["center"]], f"seed {seed}: target centre not in the mask"


def test_target_count_range() -> None:
    counts = {len(generate_scene(s, n_targets=(2, 3))[2]["targets"]) for s in SEEDS}
    assert counts <= {2, 3} and len(counts) == 2
    assert len(generate_scene(0, n_targets=4)[2]["targets"]) == 4


def test_clutter_never_in_masks() -> None:
    seen_clutter = 0
    for seed in SEEDS:
        img, mask, info = generate_scene(seed, background="ground", n_targets=(0, 0))
        assert not mask.any()  # no target: empty mask although bright clutter is there
        cm = info["clutter_mask"]
        if cm.any():
            seen_clutter += 1
            assert img[cm].max() > np.median(img) + 3 * info["noise_sigma"]  # really bright
    assert seen_clutter >= len(SEEDS) // 2
    for seed in SEEDS:
        _, mask, info = generate_scene(seed)
        assert not (mask & info["clutter_mask"]).any()


def test_clutter_is_large_or_elongated() -> None:
    for seed in SEEDS:
        _, _, info = generate_scene(seed, background="ground")
        for c in info["clutter"]:
            if c["kind"] == "blob":
                assert c["area"] > 80  # larger than any default target
            else:
                assert c["kind"] == "streak"


def test_scr_is_controllable() -> None:
    def measured(scr: float) -> float:
        return float(np.median([t["scr_measured"] for s in SEEDS
                                for t in generate_scene(s, scr=scr, background="sky")[2]["targets"]]))

    low, high = measured(3.0), measured(10.0)
    assert 0.6 * 3.0 < low < 1.4 * 3.0
    assert 0.6 * 10.0 < high < 1.4 * 10.0


@pytest.mark.parametrize("background", BACKGROUNDS)
def test_each_background(background: str) -> None:
    img, mask, info = generate_scene(3, background=background)
    assert info["background"] == background and mask.any() and np.isfinite(img).all()


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="unknown background"):
        generate_scene(0, background="desert")
    with pytest.raises(ValueError, match="bad ranges"):
        generate_scene(0, area=(0, 5))


def test_16bit_scene_keeps_range() -> None:
    img8, mask8, _ = generate_scene(5)
    img16, mask16, _ = generate_scene(5, bit_depth=16)
    np.testing.assert_array_equal(mask8, mask16)
    assert img16.max() > 255


def test_generation_is_fast() -> None:
    generate_scene(0)  # warm caches
    times = []
    for s in range(8):
        t = time.perf_counter()
        generate_scene(s)
        times.append(time.perf_counter() - t)
    assert np.median(times) < 0.05


def test_dataset_items_deterministic_per_index() -> None:
    ds = SyntheticDataset(6, seed=3)
    a = [ds[i] for i in (4, 1)]
    b = SyntheticDataset(6, seed=3)
    np.testing.assert_array_equal(a[0]["image"].numpy(), b[4]["image"].numpy())
    np.testing.assert_array_equal(a[1]["mask"].numpy(), b[1]["mask"].numpy())
    item = ds[0]
    assert item["image"].shape == item["mask"].shape == (1, 256, 256)
    assert item["name"] == "synth_00000" and isinstance(item["path"], str)
    assert set(item["mask"].unique().tolist()) <= {0.0, 1.0}
    # statistics are the generator's, not the seed's: train and test share them
    assert SyntheticDataset(2, seed=9).normalization == ds.normalization
    assert compute_normalization(ds) == ds.normalization
    mean, std = ds.normalization
    assert 20 < mean < 230 and std > 1
    assert abs(float(item["image"].mean())) < 3  # roughly standardised


def test_splits_are_disjoint_streams() -> None:
    train, test = open_synthetic("train", n=2), open_synthetic("test", n=2)
    assert not np.array_equal(train[0]["image"].numpy(), test[0]["image"].numpy())
    assert test.names == ["test_00000", "test_00001"]
    assert len(open_synthetic("train")) == 400 and len(open_dataset(None, "test")) == 100
    assert len(open_dataset("synthetic:7", "train")) == 7
    with pytest.raises(DataError, match="no split"):
        open_synthetic("holdout")


def test_written_dataset_matches_on_the_fly(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    summary = write_synthetic(out, 5, seed=2, test_fraction=0.4)
    assert (summary["train"], summary["test"]) == (3, 2)
    assert (out / "synthetic.json").is_file()
    disk = open_dataset(out, "test", normalization=(0.0, 1.0))
    assert disk.layout.name == "plain" and disk.names == ["test_00000", "test_00001"]
    live = open_synthetic("test", n=2, seed=2, normalization=(0.0, 1.0))
    for i in range(2):
        np.testing.assert_array_equal(disk[i]["image"].numpy(), live[i]["image"].numpy())
        np.testing.assert_array_equal(disk[i]["mask"].numpy(), live[i]["mask"].numpy())
    with pytest.raises(DataError, match="not empty"):
        write_synthetic(out, 2)


def test_sample_grid_marks_targets() -> None:
    from irstd.data.preview import sample_grid

    grid = sample_grid(n=3, cols=2, tile=64, margin=2)
    assert grid.shape == (130, 130, 3) and grid.dtype == np.uint8
    red = (grid[..., 0] == 255) & (grid[..., 1] == 40)
    assert red[:64, :64].any()  # first tile has its target(s) ringed
    assert (grid[66:, 66:] == 255).all()  # 4th cell is empty


def _scene_digest(seed: tuple[int, ...], **kw) -> str:
    """sha256 (16 hex) of a scene's pixels, masks and description: any change to the generator shows."""
    img, mask, info = generate_scene(seed, **kw)
    h = hashlib.sha256(img.tobytes())
    h.update(np.packbits(mask).tobytes())
    h.update(np.packbits(info["clutter_mask"]).tobytes())
    described = {k: v for k, v in info.items() if k != "clutter_mask"}
    h.update(json.dumps(described, sort_keys=True, default=repr).encode())
    return h.hexdigest()[:16]


# pinned on numpy 2.4 before the scene builder was split into parts: the split must be exact
PINNED_SCENES = [
    ((0, 0, 0), {}, "6a7c4cbf820c4dc5"),
    ((0, 0, 1), {"background": "sky"}, "6202fd4673cc66e4"),
    ((0, 0, 1), {"background": "cloud"}, "d512041feff9d824"),
    ((0, 0, 1), {"background": "sea"}, "e796d6e1c93be22f"),
    ((0, 0, 1), {"background": "ground"}, "a45f270a4bc9e74f"),
    ((0, 0, 0), {"bit_depth": 16}, "c5aa33ea8989d1e8"),
    ((0, 0, 2), {"size": (40, 72), "clutter": 0.0, "n_targets": 3}, "d1c4dbd369223e78"),
]


def _item_digest() -> str:
    """The item pixels ``(x − mean) / std`` in float32, with the generator's reference statistics."""
    ds = SyntheticDataset(2, seed=0)
    assert ds.normalization == (92.49911562601726, 33.341436406732264)
    return hashlib.sha256(ds[1]["image"].numpy().tobytes()).hexdigest()[:16]


@pytest.fixture(scope="module")
def digests_on_the_pinned_code_path() -> dict:
    """Every pinned digest, computed in a child process that runs numpy's AVX2 (X86_V3) kernels.

    numpy picks its SIMD math kernels (exp, sin, ...) by CPU at import time, and the AVX-512 ones differ from
    the AVX2 ones in the last bits, so bit-exact pins hold only on one code path: the AVX2 one they were
    made on. The child disables every dispatched feature above it that this CPU has.
    """
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    if not __cpu_features__.get("X86_V3"):
        pytest.skip("the pins were made with numpy's AVX2 (X86_V3) kernels, which this CPU lacks")
    above = [f for f in __cpu_dispatch__ if f != "X86_V3" and __cpu_features__.get(f)]
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('pins', {str(Path(__file__))!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "print(json.dumps({'scenes': [m._scene_digest(s, **kw) for s, kw, _ in m.PINNED_SCENES],"
        " 'item': m._item_digest()}))\n"
    )
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(above)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("index", range(len(PINNED_SCENES)), ids=[f"seed{i}" for i in range(len(PINNED_SCENES))])
def test_scene_is_pinned(index: int, digests_on_the_pinned_code_path: dict) -> None:
    assert digests_on_the_pinned_code_path["scenes"][index] == PINNED_SCENES[index][2]


def test_normalised_synthetic_item_is_pinned(digests_on_the_pinned_code_path: dict) -> None:
    assert digests_on_the_pinned_code_path["item"] == "326bc349d4a4cfb0"

