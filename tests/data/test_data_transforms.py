"""Joint transforms, the target-centred crop sampler, padded batching and the seeded loader."""

from __future__ import annotations

import torch

from irstd.data import (Compose, RandomCrop, RandomFlip, RandomRot90, SyntheticDataset, build_loader,
                        open_dataset, pad_collate)
from irstd.core.padding import crop_to


def _item(h: int = 256, w: int = 256, target: tuple[int, int] = (200, 37)) -> dict:
    """A frame whose pixel values encode their position, with one 2×2 target."""
    image = torch.arange(h * w, dtype=torch.float32).reshape(1, h, w)
    mask = torch.zeros(1, h, w)
    y, x = target
    mask[0, y : y + 2, x : x + 2] = 1
    return {"image": image, "mask": mask, "name": "f", "path": "f.png"}


def _hit_rate(crop: RandomCrop, n: int, **kw) -> float:
    item = _item(**kw)
    return sum(bool(crop(item)["mask"].any()) for _ in range(n)) / n


def test_target_centred_sampler_rate() -> None:
    g = torch.Generator().manual_seed(0)
    n, frame = 600, {"h": 128, "w": 128, "target": (60, 60)}
    # a uniform 32-px crop of a 128-px frame contains a 2×2 target with p = (33/97)^2 ≈ 0.12
    base = _hit_rate(RandomCrop(32, 0.0, generator=g), n, **frame)
    assert 0.07 < base < 0.17
    assert _hit_rate(RandomCrop(32, 1.0, generator=g), n, **frame) == 1.0
    half = _hit_rate(RandomCrop(32, 0.5, generator=g), n, **frame)
    expected = 0.5 + 0.5 * base
    assert abs(half - expected) < 0.08  # ~4 binomial standard deviations
    # corner targets too: the crop is clamped inside the frame and still holds the target
    assert _hit_rate(RandomCrop(32, 1.0, generator=g), 100, h=128, w=128, target=(126, 126)) == 1.0


def test_crop_is_joint_and_pads_small_frames() -> None:
    crop = RandomCrop((32, 48), generator=torch.Generator().manual_seed(1))
    item = _item(64, 80)
    out = crop(item)
    assert out["image"].shape == out["mask"].shape == (1, 32, 48)
    top, left = divmod(int(out["image"][0, 0, 0]), 80)  # the value tells where the crop came from
    assert torch.equal(out["mask"], item["mask"][..., top : top + 32, left : left + 48])
    small = crop(_item(20, 30, target=(5, 5)))
    assert small["image"].shape == (1, 32, 48)
    assert small["image"][0, 20:].abs().sum() == 0 and small["image"][0, :, 30:].abs().sum() == 0
    assert small["mask"].sum() == 4 and out["name"] == "f"


def test_flips_and_rotations_are_joint() -> None:
    t = Compose([RandomFlip(p=1.0), RandomRot90(generator=torch.Generator().manual_seed(3))])
    item = _item(64, 64, target=(10, 50))
    out = t(item)
    # the target moved with the image: the masked pixels carry the same values as before
    assert torch.equal(out["image"][out["mask"] > 0].sort().values, item["image"][item["mask"] > 0].sort().values)
    flipped = RandomFlip(horizontal=True, vertical=False, p=1.0)(item)
    assert torch.equal(flipped["image"], item["image"].flip(-1))
    assert RandomFlip(p=0.0)(item) is item


def test_pad_collate_different_sizes() -> None:
    batch = [_item(20, 30), _item(33, 17, target=(3, 3))]
    out = pad_collate(16)(batch)
    assert out["image"].shape == (2, 1, 48, 32) and out["mask"].shape == (2, 1, 48, 32)
    assert out["size"] == [(20, 30), (33, 17)]
    assert out["name"] == ["f", "f"] and out["path"] == ["f.png", "f.png"]
    for i, b in enumerate(batch):
        assert torch.equal(crop_to(out["image"][i], out["size"][i]), b["image"])
    assert out["image"][0, :, 20:].abs().sum() == 0 and out["mask"][1, :, :, 17:].sum() == 0


def test_loader_on_mixed_sizes(layout_root, write_pair) -> None:
    root = layout_root("plain")
    write_pair(root / "images", root / "masks", "img_5", size=(30, 41))  # a test frame of another size
    ds = open_dataset(root, "test")
    batch = next(iter(build_loader(ds, 2, shuffle=False, collate_fn=pad_collate(16))))
    assert batch["image"].shape == (2, 1, 32, 48)
    assert sorted(batch["size"]) == [(24, 32), (30, 41)]


def test_loader_seeded_and_cpu_unpinned() -> None:
    ds = SyntheticDataset(6, size=64, transform=RandomCrop(32, 0.5))

    def names(seed: int) -> list[str]:
        torch.manual_seed(0)
        loader = build_loader(ds, 2, shuffle=True, seed=seed)
        assert loader.pin_memory is False
        return [n for b in loader for n in b["name"]]

    assert names(1) == names(1)
    assert names(1) != names(2) or names(1) != names(3)
    assert build_loader(ds, 2, shuffle=False, device="cuda").pin_memory is True  # flag only: no transfer here


def test_loader_workers_reproducible() -> None:
    ds = SyntheticDataset(4, size=48, transform=RandomCrop(24, 0.5))

    def first(seed: int) -> torch.Tensor:
        return next(iter(build_loader(ds, 4, shuffle=True, num_workers=2, seed=seed)))["image"]

    assert torch.equal(first(5), first(5))
