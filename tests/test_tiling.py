"""Overlapping tiles: cores partition the frame and stitched maps equal whole-frame inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from irstd.data.synthetic import generate_scene
from irstd.errors import ConfigError
from irstd.inference import Predictor
from irstd.inference.tiling import plan_tiles
from irstd.models import create_model


@pytest.mark.parametrize("shape,tile,overlap", [((200, 300), 64, 16), ((97, 131), 48, 8), ((64, 64), 64, 16)])
def test_tile_cores_partition_the_frame(shape: tuple[int, int], tile: int, overlap: int) -> None:
    cover = np.zeros(shape, int)
    for t in plan_tiles(shape, tile, overlap):
        cover[t.core] += 1
        (wy, wx), (cy, cx) = t.window, t.core
        assert wy.stop - wy.start <= tile and wx.stop - wx.start <= tile
        assert wy.start <= cy.start and cy.stop <= wy.stop and wx.start <= cx.start and cx.stop <= wx.stop
        assert wy.start % (tile - 2 * overlap) == 0 and wx.start % (tile - 2 * overlap) == 0  # on the step grid
    assert (cover == 1).all()


@pytest.fixture(scope="module")
def sharp_model() -> torch.nn.Module:
    """A narrow U-Net whose last layer is amplified, so its probability map varies across the frame."""
    torch.manual_seed(0)
    model = create_model("unet", widths=[4, 8, 16, 32, 64]).eval()
    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.mul_(300.0)
        last.bias.zero_()
    return model


def test_tiled_equals_whole_frame(sharp_model: torch.nn.Module) -> None:
    frame = np.rint(generate_scene(3, size=(128, 160))[0])
    whole = Predictor(sharp_model, (100.0, 30.0), device="cpu").probabilities([frame])[0]
    assert whole.std() > 0.05  # a map with structure, so that a stitching error would show
    for tile, overlap in ((64, 16),):
        tiled = Predictor(sharp_model, (100.0, 30.0), device="cpu", tile=tile, tile_overlap=overlap)
        np.testing.assert_allclose(tiled.probabilities([frame])[0], whole, atol=1e-4)


def test_tiles_without_overlap_differ_at_seams(sharp_model: torch.nn.Module) -> None:
    """With no context the seams show: the overlap is what makes tiling exact."""
    frame = np.rint(generate_scene(3, size=(128, 160))[0])
    whole = Predictor(sharp_model, (100.0, 30.0), device="cpu").probabilities([frame])[0]
    bare = Predictor(sharp_model, (100.0, 30.0), device="cpu", tile=64, tile_overlap=0).probabilities([frame])[0]
    diff = np.abs(bare - whole)
    seam = np.zeros(frame.shape, bool)
    for k in range(64, 160, 64):
        seam[:, max(k - 2, 0) : k + 2] = True
        seam[max(k - 2, 0) : k + 2, :] = True
    assert diff[seam].max() > 1e-3


def test_bad_tile_sizes_are_config_errors(sharp_model: torch.nn.Module) -> None:
    with pytest.raises(ConfigError, match="multiples of the model's stride"):
        Predictor(sharp_model, (100.0, 30.0), device="cpu", tile=100)
    with pytest.raises(ConfigError, match="twice the overlap"):
        Predictor(sharp_model, (100.0, 30.0), device="cpu", tile=64, tile_overlap=32)
