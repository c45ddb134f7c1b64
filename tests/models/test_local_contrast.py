"""ALCNet's parameter-free local contrast layer (cyclic-shift patch contrast and its multi-scale maximum)."""

from __future__ import annotations

import pytest
import torch

from irstd.models.alcnet import multiscale_patch_contrast, patch_contrast


def test_patch_contrast_responds_to_an_isolated_point_only() -> None:
    x = torch.zeros(1, 1, 40, 40)
    x[0, 0, 20, 20] = 2.0
    pcm = patch_contrast(x, 13)
    assert pcm[0, 0, 20, 20] == pytest.approx(4.0)  # (0 − 2)·(0 − 2) in every direction
    assert pcm.flatten().topk(2).values[1] <= 0  # nowhere else positive
    assert torch.count_nonzero(multiscale_patch_contrast(torch.full((1, 2, 30, 30), 3.0))) == 0


def test_cyclic_shift_equals_roll_for_any_shift_and_size() -> None:
    """ALCNet's shifts by index gathers: the same values as torch.roll, also for shifts beyond the map."""
    from irstd.models.alcnet import cyclic_shift

    x = torch.randn(2, 3, 16, 20)
    for dy, dx in ((17, -13), (-1, 0), (0, 40), (5, 5), (-33, 21)):
        assert torch.equal(cyclic_shift(x, dy, dx), torch.roll(x, (dy, dx), (2, 3)))
