"""Function-preserving widening: a wide model initialised from its narrow twin gives the same logits."""

from __future__ import annotations

import pytest
import torch

from irstd.models import create_model
from irstd.models.widen import WidenError, is_tiling, widen_state_dict


def _random_narrow(name: str, seed: int = 0) -> torch.nn.Module:
    """A narrow model with random weights and random BatchNorm statistics (eval mode uses them)."""
    torch.manual_seed(seed)
    model = create_model(name)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_(1.0, 0.3)
                m.bias.normal_(0.0, 0.3)
        if hasattr(model.skips[2], "gamma"):
            model.skips[2].gamma.fill_(0.7)
    return model.eval()


@pytest.mark.parametrize("narrow_name,wide_name", [("sgem_unet_t", "sgem_unet"), ("unet_t", "unet"),
                                                   ("sgem_unet_t", "sgem_unet_s")])
@pytest.mark.parametrize("noise", [0.0, 0.2])
def test_widened_model_gives_the_narrow_logits(narrow_name: str, wide_name: str, noise: float) -> None:
    narrow = _random_narrow(narrow_name)
    wide = create_model(wide_name)
    wide.load_state_dict(widen_state_dict(narrow, wide, split_noise=noise, check=False))  # compared here instead
    x = torch.randn(2, 1, 48, 80, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = narrow(x), wide.eval()(x)
    assert want.abs().max() > 0.1  # a non-trivial output, so the comparison means something
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)


def test_copies_are_split_unevenly_only_with_noise() -> None:
    narrow = _random_narrow("unet_t")
    wide = create_model("unet")
    key = "encoder.1.1.0.0.weight"  # (64, 32, 3, 3) from (16, 8, 3, 3): inputs tiled ×4
    even = widen_state_dict(narrow, wide, split_noise=0.0)[key]
    uneven = widen_state_dict(narrow, wide, split_noise=0.2)[key]
    assert torch.equal(even[:, 0], even[:, 8])  # two copies of narrow input 0
    assert not torch.equal(uneven[:, 0], uneven[:, 8])
    torch.testing.assert_close(uneven[:, 0::8].sum(1), even[:, 0::8].sum(1))  # the copies still sum to the narrow weight


def test_a_concatenation_mapped_as_one_block_is_caught() -> None:
    """Tiling the decoder's [up | skip] input as one block would mix the parts: the built-in check refuses."""
    narrow = _random_narrow("unet_t")
    narrow.concat_inputs = lambda: {}  # type: ignore[method-assign]
    with pytest.raises(WidenError, match="not exact"):
        widen_state_dict(narrow, create_model("unet"))


def test_shapes_that_are_no_tiling_are_refused() -> None:
    narrow, other = create_model("unet_t"), create_model("unet", widths=(12, 24, 48, 96, 192))
    assert not is_tiling(narrow.state_dict(), other.state_dict())
    with pytest.raises(WidenError, match="not a tiling"):
        widen_state_dict(narrow, other)
    with pytest.raises(WidenError, match="not a tiling"):
        widen_state_dict(create_model("unet_t"), create_model("sgem_unet"))  # another family: other names
