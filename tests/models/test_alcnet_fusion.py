"""ALCNet's bottom-up local fusion (BLAM) normalises each input with its own statistics, as the release."""

from __future__ import annotations

import torch

from irstd.models.alcnet import BLAM


def _calibrated(deep_scale: float) -> BLAM:
    """A BLAM (fixed seed) whose running statistics were gathered with the deep input × ``deep_scale``."""
    torch.manual_seed(0)
    blam = BLAM(8)
    for bn in (m for m in blam.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.momentum = None  # cumulative average: the running statistics converge to the data's
    gen = torch.Generator().manual_seed(1)
    blam.train()
    with torch.no_grad():
        for _ in range(20):
            deep = torch.randn(4, 8, 16, 16, generator=gen) * deep_scale
            blam(deep, torch.randn(4, 8, 16, 16, generator=gen))
    return blam.eval()


def test_eval_output_ignores_the_deep_inputs_scale() -> None:
    # with one BatchNorm per input, scaling the deep input by 100 (in calibration and in use alike)
    # is normalised away; a shared BatchNorm blends both inputs' statistics and the output changes
    gen = torch.Generator().manual_seed(2)
    deep, shallow = torch.randn(2, 8, 16, 16, generator=gen), torch.randn(2, 8, 16, 16, generator=gen)
    with torch.no_grad():
        unit = _calibrated(1.0)(deep, shallow)
        scaled = _calibrated(100.0)(100.0 * deep, shallow)
    torch.testing.assert_close(scaled, unit, rtol=1e-3, atol=1e-3)


def test_attention_inner_width_is_the_full_width() -> None:
    blam = BLAM(16)
    convs = [m for m in blam.bottomup.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(16, 16), (16, 16)]
    norms = [m for m in blam.children() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 2 and norms[0] is not norms[1]
