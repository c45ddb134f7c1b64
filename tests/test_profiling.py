from __future__ import annotations

import torch.nn as nn

from irstd.core.profiling import count_macs, count_params


def test_counts_on_a_hand_computable_network() -> None:
    # conv 1->4, 3x3 with bias: 4*9 + 4 = 40 params; MACs = 4*9 per output pixel * 8*8 = 2304
    # linear-free 1x1 conv 4->2 without bias: 8 params; MACs = 8 * 64 = 512
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1, bias=False))
    assert count_params(net) == 48
    assert count_macs(net, (1, 1, 8, 8)) == 2304 + 512
    net[0].weight.requires_grad_(False)
    assert count_params(net, trainable_only=True) == 12


def test_count_macs_restores_training_mode() -> None:
    net = nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1)).train()
    count_macs(net, (1, 1, 4, 4))
    assert net.training
