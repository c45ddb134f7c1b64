"""Runners: a network (or another runtime) as one callable from a normalised batch to logits.

A runner maps a normalised, stride-padded batch (B, C, H, W) float32 to float32 logits
(B, num_classes, H, W) and tells its ``stride``, ``normalization`` (or None), ``device`` and ``label()``.
:class:`ModelRunner` runs a PyTorch network in one :class:`~irstd.inference.modes.RunMode`;
:class:`irstd.inference.backends.onnx.OnnxRunner` is the ONNX Runtime one. The predictor and
``irstd bench`` take either.
"""

from __future__ import annotations

import copy
import logging
from typing import Callable, Protocol, runtime_checkable

import torch
import torch.nn as nn

from ..core.device import autocast, cudnn_benchmark
from ..models import main_logits
from .modes import RunMode
from .rewrites import cast_parameters, fold_upsample_conv, fuse_conv_bn

__all__ = ["Runner", "ModelRunner", "MAX_CUDA_GRAPHS"]

log = logging.getLogger(__name__)

#: most input shapes one runner keeps a CUDA graph for (each holds its own activations)
MAX_CUDA_GRAPHS = 8


@runtime_checkable
class Runner(Protocol):
    """What the predictor needs from a backend."""

    stride: int
    normalization: tuple[float, float] | None
    device: torch.device

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def label(self) -> str: ...


class ModelRunner:
    """A network run in one :class:`RunMode`: ``runner(x)`` maps a normalised, stride-padded batch
    (B, C, H, W) float32 on ``device`` to float32 logits (B, num_classes, H, W).

    The fp32 mode runs ``model`` itself; the fast mode runs an optimised copy, so the caller's module
    (and its BatchNorms) are never modified.
    """

    def __init__(self, model: nn.Module, device: torch.device, mode: RunMode) -> None:
        self.device, self.mode = device, mode
        self.stride = int(getattr(model, "stride", 1))
        norm = getattr(model, "normalization", None)
        self.normalization = (float(norm[0]), float(norm[1])) if norm is not None else None
        model = model.to(device).eval()
        if mode.precision == "fast":
            model = _fast_copy(model, mode)
        self.model = model
        self._graphs = _CudaGraphCache(self._forward, device) if mode.cuda_graphs and device.type == "cuda" else None

    def label(self) -> str:
        return self.mode.label()

    def _forward(self, x: torch.Tensor, cache: bool = True) -> torch.Tensor:
        if self.mode.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with cudnn_benchmark(self.device, self.mode.cudnn_benchmark), autocast(self.device, self.mode.amp_dtype, cache):
            out = main_logits(self.model(x))
        return out.float()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            if self._graphs is not None:
                return self._graphs(x)
            return self._forward(x)


def _fast_copy(model: nn.Module, mode: RunMode) -> nn.Module:
    """A frozen copy of ``model`` with the fast mode's exact rewrites applied."""
    model = copy.deepcopy(model)
    model.requires_grad_(False)
    if mode.fuse_bn:
        fuse_conv_bn(model)
    if mode.fold_upsample:
        fold_upsample_conv(model)
    if mode.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if mode.cast_weights and mode.amp_dtype is not None:
        cast_parameters(model, mode.amp_dtype)
    return model


class _CudaGraphCache:
    """Replay ``fn`` from one CUDA graph per input (shape, dtype); capture on first use.

    Each graph owns a static input that new data is copied into and a static output that the next
    replay overwrites (hence the clone). Capture failures (e.g. a model that syncs with the host)
    switch the cache off with a warning and fall back to eager calls.
    """

    def __init__(self, fn: Callable[..., torch.Tensor], device: torch.device, max_graphs: int = MAX_CUDA_GRAPHS) -> None:
        self.fn, self.device, self.max_graphs = fn, device, max_graphs
        self.graphs: dict[tuple, tuple[torch.Tensor, torch.Tensor, "torch.cuda.CUDAGraph"]] = {}
        self.pool = torch.cuda.graph_pool_handle()  # one memory pool shared by all graphs of this runner
        self.failed = False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.failed:
            return self.fn(x)
        key = (tuple(x.shape), x.dtype)
        entry = self.graphs.get(key)
        if entry is None:
            if len(self.graphs) >= self.max_graphs:
                return self.fn(x)
            entry = self._capture(x)
            if entry is None:
                return self.fn(x)
            self.graphs[key] = entry
        static_in, static_out, graph = entry
        static_in.copy_(x)
        graph.replay()
        return static_out.clone()

    def _capture(self, x: torch.Tensor):
        static_in = x.detach().clone()
        side = torch.cuda.Stream(device=self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        try:
            # warm-up outside the capture: cuDNN autotuning and lazy initialisation must not be recorded
            with torch.cuda.stream(side):
                for _ in range(3):
                    self.fn(static_in, cache=False)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                static_out = self.fn(static_in, cache=False)
        except Exception as exc:  # noqa: BLE001 — any capture failure means: run eagerly
            log.warning("CUDA graph capture failed for input %s (%s); running eagerly", tuple(x.shape), exc)
            self.failed = True
            return None
        return static_in, static_out, graph
