"""Losses against hand computations written out in the comments."""

from __future__ import annotations

import math

import pytest
import torch

from irstd.errors import ConfigError
from irstd.losses import (
    BCELoss,
    ModelLoss,
    SoftIoUBCELoss,
    SoftIoULoss,
    bce_loss,
    create_loss,
    PROJECT_LOSS,
    mask_edges,
    mask_gradient_edges,
    model_loss_settings,
    soft_iou_bce_loss,
    soft_iou_loss,
    target_balanced_bce,
)

LN3 = math.log(3.0)  # sigmoid(ln 3) = 0.75, sigmoid(-ln 3) = 0.25


def example_4x4() -> tuple[torch.Tensor, torch.Tensor]:
    """Target: the top-left 2x2 block. Probabilities: 0.75 on the target, 0.5 on two background
    pixels, 0.25 on the ten others. Shapes (1, 1, 4, 4)."""
    target = torch.zeros(1, 1, 4, 4)
    target[..., :2, :2] = 1.0
    logits = torch.full((1, 1, 4, 4), -LN3)
    logits[..., :2, :2] = LN3
    logits[..., 3, 2:] = 0.0
    return logits, target


def test_soft_iou_perfect_prediction_is_zero() -> None:
    target = (torch.rand(2, 1, 16, 16) > 0.9).float()
    logits = (target * 2 - 1) * 30.0  # ±30: sigmoid is 0 or 1 to float precision
    assert soft_iou_loss(logits, target).item() == pytest.approx(0.0, abs=1e-6)
    assert soft_iou_loss(-logits, target).item() > 0.5  # and the opposite is far from 0


def test_soft_iou_hand_computation_4x4() -> None:
    logits, target = example_4x4()
    # Σp·t = 4·0.75 = 3;  Σp = 3 + 2·0.5 + 10·0.25 = 6.5;  Σt = 4;  union = 6.5 + 4 − 3 = 7.5
    # smooth 1: 1 − (3 + 1)/(7.5 + 1) = 1 − 8/17 = 9/17;  smooth 0: 1 − 3/7.5 = 0.6
    assert soft_iou_loss(logits, target).item() == pytest.approx(9 / 17, rel=1e-6)
    assert soft_iou_loss(logits, target, smooth=0.0).item() == pytest.approx(0.6, rel=1e-6)
    assert SoftIoULoss(smooth=0.0)(logits, target).item() == pytest.approx(0.6, rel=1e-6)


def test_bce_hand_computation_4x4() -> None:
    logits, target = example_4x4()
    # target pixels: −ln 0.75 (4 of them); p = 0.5 background: −ln 0.5 (2); p = 0.25 background:
    # −ln(1 − 0.25) = −ln 0.75 (10). Mean over 16 pixels.
    expected = (14 * -math.log(0.75) + 2 * math.log(2.0)) / 16
    assert bce_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)
    assert BCELoss()(logits, target).item() == pytest.approx(expected, rel=1e-6)
    both = 9 / 17 + expected
    assert soft_iou_bce_loss(logits, target).item() == pytest.approx(both, rel=1e-6)
    assert SoftIoUBCELoss()(logits, target).item() == pytest.approx(both, rel=1e-6)


def test_soft_iou_is_per_image_not_pooled() -> None:
    # image 1: 4x4 all target, predicted perfectly: I = 16, U = 16 -> 1 − 17/17 = 0
    # image 2: one target pixel, nothing predicted:  I = 0,  U = 1  -> 1 − 1/2 = 0.5
    # per image: (0 + 0.5)/2 = 0.25.  Pooled over the batch: 1 − (16 + 1)/(17 + 1) = 1/18.
    target = torch.zeros(2, 1, 4, 4)
    target[0] = 1.0
    target[1, 0, 0, 0] = 1.0
    logits = torch.full((2, 1, 4, 4), -30.0)
    logits[0] = 30.0
    loss = soft_iou_loss(logits, target).item()
    assert loss == pytest.approx(0.25, abs=1e-6)
    assert abs(loss - 1 / 18) > 0.1


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="differ"):
        soft_iou_loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))


def test_create_loss() -> None:
    assert isinstance(create_loss("softiou"), SoftIoULoss)
    assert isinstance(create_loss("bce"), BCELoss)
    assert isinstance(create_loss("softiou_bce", smooth=0.5), SoftIoUBCELoss)
    with pytest.raises(ConfigError, match="bce, softiou, softiou_bce"):
        create_loss("dice")


def test_mask_edges_morphological_gradient() -> None:
    # 6x6 mask, 2x2 block at rows/cols 2..3: every pixel of the 4x4 block rows/cols 1..4 sees
    # both target and background in its 3x3 neighbourhood (the 4 target pixels touch background,
    # the ring around them touches target); everything else does not.
    mask = torch.zeros(1, 1, 6, 6)
    mask[..., 2:4, 2:4] = 1.0
    expected = torch.zeros(1, 1, 6, 6)
    expected[..., 1:5, 1:5] = 1.0
    assert torch.equal(mask_edges(mask), expected)
    # a full mask has no edge: the image border is not background
    assert mask_edges(torch.ones(1, 1, 5, 5)).sum() == 0
    # integer masks with 255 work too and give float maps
    e = mask_edges((mask * 255).to(torch.uint8))
    assert e.dtype == torch.float32 and torch.equal(e, expected)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        mask_edges(torch.zeros(6, 6))


def _outputs() -> tuple[dict, torch.Tensor]:
    target = torch.zeros(2, 1, 8, 8)
    target[:, :, 3:5, 3:5] = 1.0
    out = {
        "logits": torch.randn(2, 1, 8, 8, requires_grad=True),
        "aux": [torch.randn(2, 1, 8, 8, requires_grad=True) for _ in range(2)],
        "edge": torch.randn(2, 1, 8, 8, requires_grad=True),
    }
    return out, target


def test_model_loss_value_and_gradients() -> None:
    out, target = _outputs()
    ml = ModelLoss(base="softiou", aux_weight=1.0, edge_weight=0.5)
    total = ml(out, target)
    # hand combination: (main + aux1 + aux2)/3 + 0.5·BCE(edge, edges of target)
    main = soft_iou_loss(out["logits"], target)
    a1, a2 = (soft_iou_loss(a, target) for a in out["aux"])
    edge = bce_loss(out["edge"], mask_edges(target))
    assert total.item() == pytest.approx(((main + a1 + a2) / 3 + 0.5 * edge).item(), rel=1e-6)
    total.backward()
    for t in [out["logits"], *out["aux"], out["edge"]]:
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_model_loss_aux_weight_and_parts() -> None:
    out, target = _outputs()
    ml = ModelLoss(base="bce", aux_weight=0.5, edge_weight=2.0)
    parts = ml.parts(out, target)
    main = bce_loss(out["logits"], target)
    a1, a2 = (bce_loss(a, target) for a in out["aux"])
    edge = bce_loss(out["edge"], mask_edges(target))
    # weighted mean: (main + 0.5·(a1 + a2)) / (1 + 0.5·2), then + 2·edge
    expected = (main + 0.5 * (a1 + a2)) / 2.0 + 2.0 * edge
    assert parts["total"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert parts["main"].item() == pytest.approx(main.item(), rel=1e-6)
    assert parts["aux"].item() == pytest.approx(((a1 + a2) / 2).item(), rel=1e-6)
    assert parts["edge"].item() == pytest.approx(edge.item(), rel=1e-6)
    assert not parts["main"].requires_grad and parts["total"].requires_grad


def test_model_loss_plain_tensor_and_bad_keys() -> None:
    out, target = _outputs()
    ml = ModelLoss()
    assert ml(out["logits"], target).item() == pytest.approx(soft_iou_loss(out["logits"], target).item())
    with pytest.raises(ValueError, match="'heatmap'"):
        ml({"logits": out["logits"], "heatmap": out["edge"]}, target)
    with pytest.raises(ValueError, match="'logits'"):
        ml({"aux": out["aux"]}, target)
    with pytest.raises(ConfigError, match="unknown loss"):
        ModelLoss(base="focal")


# ---------------------------------------------------------------- each baseline's own training loss


def test_mask_gradient_edges_by_hand() -> None:
    # a 2x2 target at rows/cols 3..4 of an 8x8 mask: central differences are ±1 on the pixels
    # just inside and just outside each side (rows 2..5 × cols 3..4 and rows 3..4 × cols 2..5)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 3:5, 3:5] = 1.0
    edges = mask_gradient_edges(mask)
    expected = torch.zeros(1, 1, 8, 8)
    expected[..., 2:6, 3:5] = 1.0
    expected[..., 3:5, 2:6] = 1.0
    assert torch.equal(edges, expected)  # |∇| = √2 at the 4 inner pixels, clamped to 1
    assert mask_gradient_edges(torch.zeros(1, 1, 5, 5)).sum() == 0


def test_sum_reduction_adds_every_map() -> None:
    out, target = _outputs()
    ml = ModelLoss(base="bce", aux_reduction="sum")
    main = bce_loss(out["logits"], target)
    a1, a2 = (bce_loss(a, target) for a in out["aux"])
    edge = bce_loss(out["edge"], mask_edges(target))
    assert ml(out, target).item() == pytest.approx((main + a1 + a2 + edge).item(), rel=1e-6)


def test_recipes_and_overrides() -> None:
    release = {"base": "bce", "aux_reduction": "sum"}
    assert model_loss_settings(release, "project") == PROJECT_LOSS
    assert model_loss_settings(release) == {**PROJECT_LOSS, **release}
    got = model_loss_settings(release, "release", base="softiou", aux_weight=0.5, edge_weight=3.0)
    assert got == {**PROJECT_LOSS, "aux_reduction": "sum", "aux_weight": 0.5, "edge_weight": 3.0}
    with pytest.raises(ConfigError, match="loss_recipe"):
        model_loss_settings({}, "paper")
    with pytest.raises(ConfigError, match="unknown ModelLoss"):
        model_loss_settings({"edge_gain": 2.0})
    with pytest.raises(ConfigError, match="aux_reduction"):
        ModelLoss(aux_reduction="max")
    with pytest.raises(ConfigError, match="edge_target"):
        ModelLoss(edge_target="canny")


def _trained_loss(model: str, **overrides: str) -> ModelLoss:
    """The loss the trainer builds for ``model`` from a config with ``overrides``."""
    from irstd.engine.config import load_config

    cfg = load_config(overrides={"model": model, **overrides})
    assert cfg.to_dict()["loss_settings"] == cfg.resolve_loss()  # what the checkpoints record
    return ModelLoss(**cfg.resolve_loss())


def test_isnet_trains_with_its_release_loss() -> None:
    # SoftIoU(mask) + 10·BCE(edge, |∇mask|) + SoftIoU(edge, |∇mask|)
    out, target = _outputs()
    out = {"logits": out["logits"], "edge": out["edge"]}
    grad = mask_gradient_edges(target)
    expected = soft_iou_loss(out["logits"], target) + 10 * bce_loss(out["edge"], grad) + soft_iou_loss(out["edge"], grad)
    assert _trained_loss("isnet")(out, target).item() == pytest.approx(expected.item(), rel=1e-6)
    # the previous settings stay selectable: 1·BCE against the binary edge band
    project = soft_iou_loss(out["logits"], target) + bce_loss(out["edge"], mask_edges(target))
    assert _trained_loss("isnet", loss_recipe="project")(out, target).item() == pytest.approx(project.item(), rel=1e-6)


def test_uiunet_trains_with_the_sum_of_its_bce_terms() -> None:
    target = torch.zeros(2, 1, 8, 8)
    target[..., 2:4, 5:7] = 1.0
    gen = torch.Generator().manual_seed(0)
    out = {"logits": torch.randn(2, 1, 8, 8, generator=gen), "aux": [torch.randn(2, 1, 8, 8, generator=gen) for _ in range(6)]}
    expected = sum(bce_loss(m, target) for m in [out["logits"], *out["aux"]])  # 7 terms
    assert _trained_loss("uiunet")(out, target).item() == pytest.approx(expected.item(), rel=1e-6)
    mean = sum(soft_iou_loss(m, target) for m in [out["logits"], *out["aux"]]) / 7
    assert _trained_loss("uiunet", loss_recipe="project")(out, target).item() == pytest.approx(mean.item(), rel=1e-6)


def test_abcnet_trains_with_the_sum_of_its_softiou_terms() -> None:
    target = torch.zeros(2, 1, 8, 8)
    target[..., 1:3, 1:3] = 1.0
    gen = torch.Generator().manual_seed(1)
    out = {"logits": torch.randn(2, 1, 8, 8, generator=gen), "aux": [torch.randn(2, 1, 8, 8, generator=gen) for _ in range(5)]}
    expected = sum(soft_iou_loss(m, target) for m in [out["logits"], *out["aux"]])  # 6 terms
    assert _trained_loss("abcnet")(out, target).item() == pytest.approx(expected.item(), rel=1e-6)
    # an explicit base loss overrides the release's
    bce = sum(bce_loss(m, target) for m in [out["logits"], *out["aux"]])
    assert _trained_loss("abcnet", loss="bce")(out, target).item() == pytest.approx(bce.item(), rel=1e-6)


def test_models_without_a_declaration_train_with_the_project_loss() -> None:
    assert _trained_loss("sgem_unet").settings() == PROJECT_LOSS
    assert _trained_loss("dnanet", loss="softiou_bce").settings() == {**PROJECT_LOSS, "base": "softiou_bce"}


def _two_targets() -> torch.Tensor:
    """(1, 1, 32, 32) mask: a 1-px target and a 5×5 (25-px) one, far apart (both fit the 9×9 window)."""
    t = torch.zeros(1, 1, 32, 32)
    t[0, 0, 5, 5] = 1.0
    t[0, 0, 18:23, 18:23] = 1.0
    return t


def test_target_balanced_bce_weighs_a_1px_target_like_a_25px_one() -> None:
    t = _two_targets()
    small = t.clone()
    small[0, 0, 18:23, 18:23] = 0.0
    big = t - small
    # logits +10 where right, -10 on the missed target, -10 on the background
    miss_small = torch.where(big > 0, 10.0, -10.0)
    miss_big = torch.where(small > 0, 10.0, -10.0)
    a, b = target_balanced_bce(miss_small, t), target_balanced_bce(miss_big, t)
    assert a.item() == pytest.approx(b.item(), rel=1e-3)  # each missed target costs about half of 10
    assert a.item() == pytest.approx(5.0, rel=1e-2)
    # the pixel-mean BCE sees a 25-fold difference: the imbalance the term removes
    assert bce_loss(miss_big, t).item() > 20 * bce_loss(miss_small, t).item()
    # a target wider than the window (7×7 here) weighs somewhat more, not 49 times more
    wide = torch.zeros_like(t)
    wide[0, 0, 5, 5] = 1.0
    wide[0, 0, 18:25, 18:25] = 1.0
    wide_big = wide.clone()
    wide_big[0, 0, 5, 5] = 0.0
    share = target_balanced_bce(torch.where(wide_big > 0, 10.0, -10.0), wide)  # the 1-px target missed
    assert 10.0 / 3 < share.item() < 5.0  # the missed 1-px target keeps between a third and a half


def test_target_balanced_bce_skips_empty_masks_and_keeps_a_gradient() -> None:
    logits = torch.randn(2, 1, 32, 32, requires_grad=True)
    target = torch.stack([_two_targets()[0], torch.zeros(1, 32, 32)])
    both = target_balanced_bce(logits, target)
    first = target_balanced_bce(logits[:1], target[:1])
    assert both.item() == pytest.approx(first.item(), rel=1e-6)  # the empty image is not averaged in
    empty = target_balanced_bce(logits, torch.zeros_like(target))
    assert empty.item() == 0.0
    empty.backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) == 0.0
    with pytest.raises(ValueError, match="B, 1, H, W"):
        target_balanced_bce(logits.flatten(2), target.flatten(2))


def test_model_loss_target_weight_adds_the_balanced_term() -> None:
    torch.manual_seed(0)
    logits, t = torch.randn(2, 1, 32, 32), _two_targets().repeat(2, 1, 1, 1)
    plain = ModelLoss(base="softiou_bce")
    weighted = ModelLoss(base="softiou_bce", target_weight=0.5)
    parts = weighted.parts(logits, t)
    assert parts["target"].item() == pytest.approx(target_balanced_bce(logits, t).item())
    assert parts["total"].item() == pytest.approx(plain(logits, t).item() + 0.5 * parts["target"].item(), rel=1e-6)
    assert "target" not in plain.parts(logits, t)
    assert ModelLoss(**weighted.settings()).target_weight == 0.5
    with pytest.raises(ConfigError, match="target_weight=-1"):
        ModelLoss(target_weight=-1.0)


def test_target_weight_reaches_the_trainer_loss() -> None:
    assert _trained_loss("unet_t", target_weight="0.25").target_weight == 0.25
    assert _trained_loss("unet_t").target_weight == 0.0
