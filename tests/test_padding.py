from __future__ import annotations

import pytest
import torch

from irstd.core.padding import crop_to, pad_to_multiple, padded_size


def test_padded_size() -> None:
    assert padded_size(250, 330, 16) == (256, 336)
    assert padded_size(256, 256, 16) == (256, 256)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_pad_then_crop_round_trips(mode: str) -> None:
    x = torch.randn(2, 1, 37, 50)
    padded, size = pad_to_multiple(x, 16, mode=mode)
    assert padded.shape == (2, 1, 48, 64) and size == (37, 50)
    torch.testing.assert_close(crop_to(padded, size), x)
    if mode == "constant":
        assert padded[..., 37:, :].abs().sum() == 0


def test_reflect_falls_back_when_pad_exceeds_image() -> None:
    padded, size = pad_to_multiple(torch.randn(1, 1, 3, 3), 16, mode="reflect")
    assert padded.shape == (1, 1, 16, 16)


def test_bad_multiple() -> None:
    with pytest.raises(ValueError):
        pad_to_multiple(torch.zeros(1, 1, 4, 4), 0)
