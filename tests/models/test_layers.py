"""Shared building blocks of irstd.models.layers: the options several networks rely on."""

from __future__ import annotations

import torch
import torch.nn as nn

from irstd.models.layers.attention import PooledBatchNorm2d, SpatialAttention, channel_mean_max
from irstd.models.layers.conv import ConvBNAct, UpConv, resize, upsample_like


def test_conv_bn_act_bias_only_on_request() -> None:
    assert ConvBNAct(4, 8)[0].bias is None
    biased = ConvBNAct(4, 8, 1, bias=True)
    assert biased[0].bias is not None and biased[0].kernel_size == (1, 1)
    assert [type(m) for m in biased] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]


def test_up_conv_modes() -> None:
    x = torch.randn(2, 4, 5, 7)
    nearest, bilinear = UpConv(4, 3), UpConv(4, 3, mode="bilinear")
    # nearest ×2 directly followed by a 3×3 conv is the pattern irstd.rewrites folds
    assert nearest[0].mode == "nearest" and nearest[0].scale_factor == 2.0
    assert bilinear[0].mode == "bilinear" and bilinear[0].align_corners is False
    assert nearest(x).shape == bilinear(x).shape == (2, 3, 10, 14)


def test_resize_is_the_identity_at_the_target_size() -> None:
    x = torch.randn(1, 2, 6, 8)
    assert resize(x, (6, 8)) is x
    assert resize(x, (12, 16), align_corners=True).shape == (1, 2, 12, 16)
    assert upsample_like(x, torch.zeros(3, 1, 9, 4), mode="nearest").shape == (1, 2, 9, 4)
    # align_corners=True keeps the corner pixels exactly
    y = resize(x, (11, 15), align_corners=True)
    torch.testing.assert_close(y[..., [0, -1], :][..., [0, -1]], x[..., [0, -1], :][..., [0, -1]])


def test_channel_mean_max_and_spatial_attention() -> None:
    x = torch.randn(2, 5, 4, 6)
    d = channel_mean_max(x)
    assert d.shape == (2, 2, 4, 6)
    torch.testing.assert_close(d[:, 0], x.mean(1))
    torch.testing.assert_close(d[:, 1], x.amax(1))
    att = SpatialAttention(3)(x)
    assert att.shape == (2, 1, 4, 6) and ((att > 0) & (att < 1)).all()


def test_pooled_batch_norm_trains_on_a_single_vector() -> None:
    bn = PooledBatchNorm2d(3).train()
    bn.running_mean.fill_(1.0)
    out = bn(torch.full((1, 3, 1, 1), 3.0))  # nn.BatchNorm2d refuses this in training mode
    # normalised with the running statistics (mean 1, var 1), which stay as they were
    torch.testing.assert_close(out, torch.full((1, 3, 1, 1), 2.0 / (1 + bn.eps) ** 0.5))
    assert torch.equal(bn.running_mean, torch.ones(3))
    before = bn.num_batches_tracked.clone()
    bn(torch.randn(4, 3, 1, 1))  # two or more values: an ordinary BatchNorm, statistics updated
    assert bn.num_batches_tracked == before + 1 and not torch.equal(bn.running_mean, torch.ones(3))
