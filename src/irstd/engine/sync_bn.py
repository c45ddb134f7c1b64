"""BatchNorm over the global batch of all ranks (``sync_bn: true``), on CUDA and on the CPU.

On CUDA this is torch's :class:`torch.nn.SyncBatchNorm` (fused kernels, NCCL). torch's version
refuses CPU tensors, so on the CPU (gloo) :class:`AllReduceBatchNorm` computes the same statistics
with a differentiable all-reduce of per-channel sums: the gradient flows back through the global
mean and variance exactly as in one process over the whole global batch.
"""

from __future__ import annotations

import logging

import torch
import torch.distributed as dist
import torch.nn as nn

from ..core.distributed import is_distributed

__all__ = ["AllReduceBatchNorm", "convert_sync_batchnorm"]

log = logging.getLogger(__name__)


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) whose backward all-reduces the gradient: d(sum over ranks of each rank's
    loss)/d(local input) for statistics that every rank's loss depends on."""

    @staticmethod
    def forward(ctx: object, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class AllReduceBatchNorm(nn.BatchNorm2d):
    """:class:`torch.nn.BatchNorm2d` whose training statistics cover every rank's batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        c = x.shape[1]
        xf = x.to(torch.promote_types(x.dtype, torch.float32))  # (B, C, H, W); statistics in fp32 at least
        # two passes (mean, then squared deviations): E[x^2] - E[x]^2 loses digits when |mean| >> std
        local = torch.cat([xf.sum((0, 2, 3)), xf.new_tensor([x.numel() // c])])  # (C+1,)
        total = _SumOverRanks.apply(local)  # sums over ranks; its backward all-reduces the gradients
        count = total[-1]
        mean = total[:c] / count  # (C,)
        centred = xf - mean[None, :, None, None]
        var = _SumOverRanks.apply((centred * centred).sum((0, 2, 3))) / count  # (C,) biased, as BatchNorm normalises
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * count / (count - 1).clamp_min(1.0)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased.detach(), alpha=m)
        y = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)


def _to_all_reduce(module: nn.Module) -> nn.Module:
    """``module`` with every plain BatchNorm2d replaced by an :class:`AllReduceBatchNorm` sharing its tensors."""
    if type(module) is nn.BatchNorm2d:
        new = AllReduceBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                 module.track_running_stats)
        if module.affine:
            new.weight, new.bias = module.weight, module.bias  # the same Parameters: the optimiser keeps them
        new.running_mean, new.running_var = module.running_mean, module.running_var
        new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        setattr(module, name, _to_all_reduce(child))
    return module


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` with synchronised BatchNorm layers (CUDA: torch's; CPU: :class:`AllReduceBatchNorm`)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _to_all_reduce(model)
