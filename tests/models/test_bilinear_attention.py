"""ABC's bilinear attention module (BAM): row-stochastic on any input size, and live inside the network."""

from __future__ import annotations

import torch

from irstd.models import create_model
from irstd.models.abcnet import BilinearAttention


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
