"""Edge cues of the edge-supervised baselines: ISNet's edge map gates the segmentation, EGPNet's Sobel cue."""

from __future__ import annotations

import torch

from irstd.models import create_model
from irstd.models.egpnet import sobel_magnitude


def test_isnet_edge_gates_the_segmentation() -> None:
    torch.manual_seed(0)
    model = create_model("isnet").eval()
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        base = model(x)
        model.edge_head.weight.mul_(-50)  # another edge map must change the segmentation
        assert not torch.allclose(base, model(x))


def test_sobel_magnitude_marks_the_step_only() -> None:
    img = torch.zeros(1, 1, 16, 16)
    img[..., 8:] = 1.0  # vertical step between columns 7 and 8
    g = sobel_magnitude(img)[0, 0]
    assert (g[:, 7:9] > 0.4).all()
    assert g[:, :6].abs().max() < 1e-5 and g[:, 10:].abs().max() < 1e-5
