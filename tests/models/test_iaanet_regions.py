"""IAANet's region proposals and the fusion of transformer logits (inside regions) with the coarse map."""

from __future__ import annotations

import torch

from irstd.models import create_model


def test_iaanet_zero_proposals_gives_the_coarse_map() -> None:
    model = create_model("iaanet", conf_thres=1.0, fallback_topk=0).eval()  # p > 1 never happens
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        parts = model.forward_parts(x)
        out = model(x)
    assert not parts["regions"].any()
    torch.testing.assert_close(parts["logits"], parts["coarse"], rtol=0, atol=0)
    torch.testing.assert_close(out, parts["coarse"], rtol=0, atol=0)


def test_iaanet_fuses_transformer_logits_inside_regions_only() -> None:
    model = create_model("iaanet").eval()  # untrained: no confident cell → fall-back to the best cells
    x = torch.randn(1, 1, 48, 48)
    with torch.no_grad():
        parts = model.forward_parts(x)
    regions = parts["regions"][:, None]
    assert regions.any() and not regions.all()
    outside = ~regions
    torch.testing.assert_close(parts["logits"][outside], parts["coarse"][outside], rtol=0, atol=0)
    assert not torch.allclose(parts["logits"][regions], parts["coarse"][regions])


def test_iaanet_region_window_around_a_confident_cell() -> None:
    model = create_model("iaanet", region_size=24).eval()
    obj = torch.full((1, 1, 4, 4), -10.0)
    obj[0, 0, 1, 2] = 3.0  # the only confident cell: rows 16..31, cols 32..47
    regions = model.select_regions(obj, (64, 64))[0]
    want = torch.zeros(64, 64, dtype=torch.bool)
    want[12:36, 28:52] = True  # the cell plus a 4-px margin
    assert torch.equal(regions, want)


def test_iaanet_mixed_batch_proposals() -> None:
    """One image with a confident cell, one without: only the first gets regions (fallback off)."""
    model = create_model("iaanet", fallback_topk=0).eval()
    obj = torch.full((2, 1, 2, 2), -10.0)
    obj[0, 0, 0, 0] = 3.0
    regions = model.select_regions(obj, (32, 32))
    assert regions[0].any() and not regions[1].any()
