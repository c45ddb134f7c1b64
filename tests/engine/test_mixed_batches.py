"""Training against clutter: the ``negatives`` block, its batches, mining, the empty-mask loss, resume."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from irstd.core.errors import ConfigError
from irstd.data import save_image
from irstd.data.items import normalize
from irstd.data.synthetic import generate_scene
from irstd.engine.config import TrainConfig
from irstd.engine.data import build_train_val
from irstd.engine.mining import mine_locations
from irstd.engine.mixed_batches import compact_frame
from irstd.engine.trainer import fit
from irstd.losses import ModelLoss, soft_iou_loss
from irstd.models.checkpoint import read_checkpoint

TINY = {"widths": [4, 8, 16, 32, 64]}
#: (stem, size): train groups S4 and iraytek, one frame smaller than the crop, one held-out (TH) frame
FRAMES = [("S4-1", (40, 50)), ("S4-2", (24, 30)), ("iraytek-3", (64, 48)), ("TH-4", (40, 40))]


@pytest.fixture
def neg_root(tmp_path: Path) -> Path:
    """Target-free generated frames as 8-bit PNGs, named like SIRST-V2 background frames."""
    root = tmp_path / "background"
    (root / "images").mkdir(parents=True)
    for i, (stem, size) in enumerate(FRAMES):
        image, mask, _ = generate_scene(i, size, n_targets=0)
        assert not mask.any()
        save_image(root / "images" / f"{stem}.png", image)
    return root


def _cfg(tmp_path: Path, root: Path, **negatives: object) -> TrainConfig:
    block = {"root": str(root), "ratio": 0.5, **negatives}
    return TrainConfig(
        model="unet", model_kwargs=dict(TINY), epochs=2, batch_size=4, crop_size=32, target_crop_prob=1.0,
        synthetic_train=4, synthetic_val=1, lr=1e-2, scheduler="constant", out=str(tmp_path),
        name="run", progress=False, eval_batch_size=2, negatives=block,
    )


# --- configuration -------------------------------------------------------------------------------

@pytest.mark.parametrize(("block", "message"), [
    ({"split": "heldout"}, "split heldout is refused"),
    ({"groups": ["S4", "TH"]}, "held-out scene group(s) TH"),
    ({"ratio": 1.0}, "ratio must be in [0, 1)"),
    ({"ratio": 0.9}, "leaves no target crop"),
    ({"mining_shar": 0.5}, "did you mean 'mining_share'"),
    ({"mining_top": 0}, "mining_top must be >= 1"),
    ({"groups": "S4"}, "groups must be a list"),
])
def test_bad_negatives_block_is_one_line(tmp_path: Path, block: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({"batch_size": 4, "negatives": {"root": str(tmp_path), **block}})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_counts_per_batch_and_loss_choice(tmp_path: Path) -> None:
    cfg = TrainConfig.from_dict({"batch_size": 8, "negatives": {"root": str(tmp_path)}})  # ratio 0.25
    neg = cfg.negatives_config
    assert neg is not None and (neg.per_batch, neg.mined_per_batch) == (2, 0)  # mining off by default
    assert cfg.loss_settings["empty_masks"] == "bce"
    tiny = TrainConfig.from_dict({"batch_size": 8, "negatives": {"root": str(tmp_path), "ratio": 0.01,
                                                                 "mining_every": 3, "mining_share": 0.5}})
    assert (tiny.negatives_config.per_batch, tiny.negatives_config.mined_per_batch) == (1, 1)  # halves go up
    off = TrainConfig.from_dict({"negatives": {"root": str(tmp_path), "ratio": 0}})
    assert off.negatives_config is None and off.loss_settings["empty_masks"] == "softiou"


def test_training_refuses_a_negatives_folder_with_masks(tmp_path: Path, neg_root: Path) -> None:
    (neg_root / "masks").mkdir()
    with pytest.raises(Exception, match="a negatives folder has no masks"):
        build_train_val(_cfg(tmp_path, neg_root), stride=16)


# --- loss ----------------------------------------------------------------------------------------

def test_negatives_only_batch_gives_a_finite_loss_that_pushes_down() -> None:
    torch.manual_seed(0)
    logits = (torch.randn(3, 1, 16, 16) * 2).requires_grad_()
    target = torch.zeros(3, 1, 16, 16)
    loss = ModelLoss(empty_masks="bce")(logits, target)
    assert torch.isfinite(loss)
    loss.backward()
    assert (logits.grad > 0).all()  # descent lowers every logit, i.e. every probability
    # the per-image SoftIoU term fades on a strong false alarm; the BCE term does not
    hot = torch.full((1, 1, 16, 16), -6.0)
    hot[..., 4:8, 4:8] = 6.0  # a 16-px blob at p ≈ 0.998
    grads = {}
    for mode in ("softiou", "bce"):
        x = hot.clone().requires_grad_()
        soft_iou_loss(x, torch.zeros_like(x), empty=mode).backward()
        grads[mode] = float(x.grad[..., 4:8, 4:8].sum())
    assert grads["bce"] > 10 * grads["softiou"] > 0


def test_images_with_targets_score_as_before() -> None:
    torch.manual_seed(1)
    logits, target = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) > 0.8).float()
    assert target.flatten(1).sum(1).min() > 0
    torch.testing.assert_close(soft_iou_loss(logits, target, empty="bce"), soft_iou_loss(logits, target),
                               rtol=0, atol=0)


# --- mining --------------------------------------------------------------------------------------

def test_mine_locations_orders_peaks_and_suppresses_their_neighbours() -> None:
    score = torch.zeros(40, 60)
    score[10, 10], score[11, 12] = 0.9, 0.8  # the second is within the radius of the first: suppressed
    score[30, 50], score[5, 40], score[20, 25] = 0.7, 0.6, 0.3
    got = mine_locations(score, top=3, radius=4)
    assert [(y, x) for y, x, _ in got] == [(10, 10), (30, 50), (5, 40)]
    assert [s for *_, s in got] == pytest.approx([0.9, 0.7, 0.6])
    assert [(y, x) for y, x, _ in mine_locations(score, top=10, radius=4)][-1] == (20, 25)  # zeros never kept
    assert len(mine_locations(score, top=10, radius=4)) == 4
    assert [(y, x) for y, x, _ in mine_locations(score, top=2, radius=0)] == [(10, 10), (11, 12)]


def test_compact_frame_is_exact() -> None:
    eight = np.array([[0.0, 255.0]], dtype=np.float32)
    assert compact_frame(eight).dtype == np.uint8 and compact_frame(np.float32([[300.0]])).dtype == np.uint16
    odd = np.float32([[0.5, 2.0]])
    assert compact_frame(odd).dtype == np.float32
    np.testing.assert_array_equal(compact_frame(eight).astype(np.float32), eight)


# --- batches -------------------------------------------------------------------------------------

def _batches(data, epoch: int = 0) -> list[dict]:
    return [{k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in b.items()} for b in data.train_loader(epoch)]


def test_batches_hold_the_requested_share_of_background_crops(tmp_path: Path, neg_root: Path) -> None:
    cfg = _cfg(tmp_path, neg_root, ratio=0.25)  # 1 of 4
    data = build_train_val(dataclasses.replace(cfg, device_data="off"), stride=16)
    assert data.negatives is not None and set(data.negatives.set.groups) == {"S4", "iraytek"}  # never TH
    batches = _batches(data)
    assert len(batches) == 1  # 4 target items, 3 per batch (one left over, as the sampler drops)
    for b in batches:
        assert b["negative"].tolist() == [False, False, False, True]
        assert b["image"].shape == (4, 1, 32, 32) and b["mask"][b["negative"]].sum() == 0
        assert b["mask"][~b["negative"]].flatten(1).sum(1).min() > 0  # target_crop_prob 1: targets in view
        assert all(n.split("-")[0] in {"S4", "iraytek"} for n, neg in zip(b["name"], b["negative"]) if neg)


def test_host_and_device_paths_draw_the_same_mixed_batches(tmp_path: Path, neg_root: Path) -> None:
    cfg = _cfg(tmp_path, neg_root, mining_every=1, mining_share=0.5)
    host = build_train_val(dataclasses.replace(cfg, device_data="off"), stride=16)
    dev = build_train_val(dataclasses.replace(cfg, device_data="on"), stride=16)
    pool = [(0, 20, 25, 0.9), (2, 50, 10, 0.5)]
    for d in (host, dev):
        d.negatives.set_pool(pool)
    for epoch in (0, 1):
        a, b = _batches(host, epoch), _batches(dev, epoch)
        assert len(a) == len(b) == 2
        for x, y in zip(a, b):
            for key in ("image", "mask", "negative", "mined"):
                torch.testing.assert_close(x[key], y[key], rtol=0, atol=0, msg=key)
            assert x["mined"].tolist() == [False, False, True, False]  # 1 of the 2 background crops


def test_mined_crops_are_centred_on_the_false_alarm(tmp_path: Path, neg_root: Path) -> None:
    # one frame with a single hot pixel: mining finds it, and every mined crop holds it near its centre
    frame = np.full((64, 48), 100.0, dtype=np.float32)
    frame[40, 30] = 250.0
    (neg_root / "images" / "iraytek-3.png").unlink()
    save_image(neg_root / "images" / "iraytek-3.png", frame)
    data = build_train_val(dataclasses.replace(_cfg(tmp_path, neg_root, mining_every=1, mining_share=1.0),
                                               device_data="off"), stride=16)
    f = data.negatives.set.stems.index("iraytek-3")
    score = torch.from_numpy(data.negatives.frames[f].astype(np.float32))
    (y, x, _), = mine_locations(score, top=1, radius=16)
    assert (y, x) == (40, 30)
    data.negatives.set_pool([(f, y, x, 1.0)])
    hot = float(normalize(np.float32([250.0]), data.normalization)[0])
    for b in _batches(data):
        for image in b["image"][b["mined"]]:
            rows, cols = torch.nonzero(image[0] == hot, as_tuple=True)
            assert len(rows) == 1 and {int(rows[0]), int(cols[0])} <= {15, 16}  # centre, or its flip


# --- training and exact resume -------------------------------------------------------------------

def _same_weights(a_path: Path, b_path: Path) -> None:
    a, _ = read_checkpoint(a_path)
    b, _ = read_checkpoint(b_path)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_training_with_negatives_and_mining_resumes_exactly(tmp_path: Path, neg_root: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import irstd.engine.trainer as trainer

    calls = []
    score = trainer.score_negatives
    monkeypatch.setattr(trainer, "score_negatives", lambda *a, **k: calls.append(1) or score(*a, **k))
    cfg = _cfg(tmp_path, neg_root, mining_every=1, mining_top=2)
    straight = fit(dataclasses.replace(cfg, name="straight", epochs=3))
    assert ["mined" in r for r in straight.history] == [True, True, False]  # not after the last epoch
    assert straight.history[0]["mined"] > 0

    # killed during epoch 3: the state after epoch 2 holds the pool mined then, and the resume uses it
    real_epoch = trainer.train_one_epoch
    runs = []

    def dies_in_epoch_3(*a, **k):
        runs.append(1)
        if len(runs) == 3:
            raise KeyboardInterrupt
        return real_epoch(*a, **k)

    monkeypatch.setattr(trainer, "train_one_epoch", dies_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        fit(dataclasses.replace(cfg, name="killed", epochs=3))
    monkeypatch.setattr(trainer, "train_one_epoch", real_epoch)
    state = torch.load(tmp_path / "killed" / "last.state.pt", weights_only=False)
    assert state["negative_pool_epoch"] == 2 and all(len(p) == 4 for p in state["negative_pool"])
    calls.clear()
    resumed = fit(dataclasses.replace(cfg, name="killed", epochs=3), resume=tmp_path / "killed")
    assert calls == []  # taken from the state, not recomputed
    _same_weights(straight.last_path, resumed.last_path)

    # finished at epoch 2 (its last, not mined), then continued to 3: the pool is mined at resume
    fit(dataclasses.replace(cfg, name="extended", epochs=2))
    calls.clear()
    extended = fit(dataclasses.replace(cfg, name="extended", epochs=3), resume=tmp_path / "extended")
    assert len(calls) == 1
    _same_weights(straight.last_path, extended.last_path)
    assert [r["loss"] for r in extended.history] == [r["loss"] for r in straight.history]


# --- recipe files --------------------------------------------------------------------------------

def test_negatives_recipe_and_light_sweep_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    from irstd.engine.config import load_config
    from irstd.experiments import load_sweep

    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)
    plain, neg = load_config("configs/sirst_cpu.yaml"), load_config("configs/sirst_cpu_negatives.yaml")
    differ = {k for k, v in neg.to_dict().items() if plain.to_dict()[k] != v}
    assert differ == {"negatives", "loss_settings"} and neg.loss_settings["empty_masks"] == "bce"
    assert neg.negatives_config.split == "train" and neg.negatives_config.mining_every > 0
    spec = load_sweep(root / "configs" / "sweeps" / "sirst_cpu_light_negatives.yaml")
    cells = spec.runs()
    assert spec.name == "sirst_cpu_light_negatives"
    assert sorted((c.model, c.seed) for c in cells) == [("sgem_unet_t", 0), ("unet_t", 0)]
    assert all(c.cfg.negatives == neg.negatives for c in cells)
