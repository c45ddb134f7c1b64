"""Baseline zoo II: ABC, EGPNet, IAANet — published counts, the output contract, IAANet's proposals."""

from __future__ import annotations

import pytest
import torch

from irstd.losses import ModelLoss
from irstd.models import create_model, get_model_entry
from irstd.models._published import reference_for
from irstd.models.abcnet import BilinearAttention
from irstd.models.egpnet import sobel_magnitude
from irstd.profiling import count_macs, count_params

NAMES = ["abcnet", "egpnet", "iaanet"]
TOLERANCE = 0.15  # the seed's Table 1 figures (parameters, MACs at 1×1×256×256) within ±15 %


@pytest.fixture(scope="module")
def counts() -> dict[str, tuple[int, int]]:
    """Parameters and MACs of every model, counted once (IAANet's full-resolution stack takes a while)."""
    torch.manual_seed(0)
    out = {}
    for name in NAMES:
        model = create_model(name)
        out[name] = (count_params(model), count_macs(model, (1, 1, 256, 256)))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_counts_match_published_table(name: str, counts: dict[str, tuple[int, int]]) -> None:
    params, macs = counts[name]
    ref = reference_for(name)
    assert ref is not None and ref.params_m and ref.gmacs
    assert abs(params / 1e6 / ref.params_m - 1) <= TOLERANCE, f"{name}: {params / 1e6:.2f} M params vs {ref.params_m} M"
    assert abs(macs / 1e9 / ref.gmacs - 1) <= TOLERANCE, f"{name}: {macs / 1e9:.2f} GMACs vs {ref.gmacs} G"


@pytest.mark.parametrize("name", NAMES)
def test_registered_as_learned_with_paper(name: str) -> None:
    entry = get_model_entry(name)
    assert entry.kind == "learned" and entry.paper


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(1, 64, 64), (2, 48, 80)])
def test_eval_forward_shape(name: str, shape: tuple[int, int, int]) -> None:
    model = create_model(name).eval()
    assert model.stride == 16
    x = torch.randn(shape[0], 1, shape[1], shape[2])
    with torch.no_grad():
        out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == x.shape
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_size_not_multiple_of_stride_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="multiples of 16"):
        create_model(name).eval()(torch.randn(1, 1, 40, 64))


N_AUX = {"abcnet": 5, "iaanet": 2}


@pytest.mark.parametrize("name", NAMES)
def test_training_outputs_and_gradients(name: str) -> None:
    model = create_model(name).train()
    x = torch.randn(2, 1, 16, 32)
    mask = torch.zeros(2, 1, 16, 32)
    mask[:, :, 6:9, 20:23] = 1
    out = model(x)
    assert isinstance(out, dict) and set(out) == {"logits", *model.extra_outputs}
    assert out["logits"].shape == x.shape
    if "aux" in out:
        assert len(out["aux"]) == N_AUX[name]
        assert all(a.shape == x.shape for a in out["aux"])
    if "edge" in out:
        assert out["edge"].shape == x.shape
    loss = ModelLoss()(out, mask)
    assert torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_extra_outputs_declared() -> None:
    assert create_model("abcnet").extra_outputs == ("aux",)
    assert create_model("egpnet").extra_outputs == ("edge",)
    assert create_model("iaanet").extra_outputs == ("aux",)


@pytest.mark.parametrize("name", NAMES)
def test_eval_is_deterministic(name: str) -> None:
    model = create_model(name).eval()
    x = torch.randn(1, 1, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


# --- ABC -------------------------------------------------------------------------------------------


def test_bilinear_attention_rows_are_distributions_on_any_size() -> None:
    bam = BilinearAttention(channels=4, ref_side=8).eval()
    for h, w in [(8, 8), (16, 24), (4, 12)]:
        att = bam(torch.randn(2, 4, h, w))
        assert att.shape == (2, 4, h, h)
        torch.testing.assert_close(att.sum(-1), torch.ones(2, 4, h))


def test_abcnet_attention_branch_is_live() -> None:
    """γ starts at 0 (the paper's init); once non-zero, the attention changes the output."""
    model = create_model("abcnet").eval()
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        before = model(x)
        for stage in (model.enc2, model.enc3, model.enc4):
            stage.gamma.fill_(1.0)
        after = model(x)
    assert not torch.allclose(before, after)


# --- EGPNet ----------------------------------------------------------------------------------------


def test_sobel_magnitude_marks_the_step_only() -> None:
    img = torch.zeros(1, 1, 16, 16)
    img[..., 8:] = 1.0  # vertical step between columns 7 and 8
    g = sobel_magnitude(img)[0, 0]
    assert (g[:, 7:9] > 0.4).all()
    assert g[:, :6].abs().max() < 1e-5 and g[:, 10:].abs().max() < 1e-5


# --- IAANet ----------------------------------------------------------------------------------------


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
