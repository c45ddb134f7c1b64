"""Run a model on raw frames: normalise, pad to the stride, predict, crop back, extract targets.

:class:`Predictor` is the one inference path used by ``irstd detect`` and the Python API. Frames are
2-D arrays in their native range (8-bit, 16-bit, float); the model's normalisation (from its checkpoint)
is applied here, so callers never normalise by hand.

Two precisions (``docs/speed.md``):

* ``fp32``: the network as trained, eager, full precision — the reference;
* ``fast``: the fastest mode that stays exact enough for the device. A copy of the network gets its
  BatchNorms folded into the preceding convolutions and a channels-last layout (on CPUs also the
  up-sampling + 3×3 conv fold and weights stored in the compute dtype: :mod:`irstd.rewrites`); it runs
  under bf16 autocast on CPUs with bf16 instructions (fp32 otherwise), and under bf16 (or fp16) autocast with
  ``cudnn.benchmark`` (switched on for its own calls only) on CUDA, optionally replayed from CUDA
  graphs captured per input shape.

:class:`ModelRunner` is that per-mode execution, shared with ``irstd bench``; an ONNX Runtime session
(:class:`irstd.export.OnnxRunner`) can stand in for it (:meth:`Predictor.from_onnx`).
"""

from __future__ import annotations

import contextlib
import copy
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, ContextManager, Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn
from scipy import ndimage

from .engine.checkpoint import load_model
from .engine.runtime import resolve_amp, resolve_device
from .errors import CheckpointError, ConfigError, DataError
from .metrics import connected_components
from .models import create_model, get_model_entry, is_model, main_logits
from .padding import crop_to, pad_to_multiple
from .rewrites import cast_parameters, fold_upsample_conv, fuse_conv_bn

__all__ = [
    "Target",
    "Prediction",
    "Predictor",
    "RunMode",
    "ModelRunner",
    "PRECISIONS",
    "resolve_mode",
    "fuse_conv_bn",
    "cpu_supports_bf16",
    "extract_targets",
    "load_predictor_model",
]

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fast", "fp32")

#: most input shapes one runner keeps a CUDA graph for (each holds its own activations)
MAX_CUDA_GRAPHS = 8


@dataclass
class Target:
    """One detected target: centroid (x = column, y = row, pixels), area, bounding box, peak probability."""

    x: float
    y: float
    area: int
    bbox: tuple[int, int, int, int]  # (x0, y0, x1, y1), inclusive pixel indices
    peak: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Prediction:
    """The model's answer for one frame, at the frame's own size."""

    prob: np.ndarray  # (H, W) float32 in [0, 1]
    mask: np.ndarray  # (H, W) bool, prob > threshold
    targets: list[Target] = field(default_factory=list)


def extract_targets(prob: np.ndarray, mask: np.ndarray, connectivity: int = 8) -> list[Target]:
    """Connected components of ``mask`` as targets (same labelling as the metrics' Pd/Fa)."""
    cc = connected_components(mask, connectivity)
    if cc.n == 0:
        return []
    index = np.arange(1, cc.n + 1)
    areas = ndimage.sum_labels(np.ones_like(prob), cc.labels, index)
    peaks = ndimage.maximum(prob, cc.labels, index)
    targets = []
    for i, sl in enumerate(ndimage.find_objects(cc.labels)):
        y, x = cc.centroids[i]
        bbox = (sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1)
        targets.append(Target(float(x), float(y), int(areas[i]), tuple(int(v) for v in bbox), float(peaks[i])))
    return targets


def load_predictor_model(spec: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """A checkpoint path, or the name of a classical (training-free) detector."""
    if isinstance(spec, str) and is_model(spec) and not Path(spec).exists():
        if get_model_entry(spec).kind != "classical":
            raise CheckpointError(f"{spec!r} is a trainable model: pass a checkpoint file, not its name")
        return create_model(spec).to(device).eval()
    return load_model(spec, device)


# --------------------------------------------------------------------------------------------
# execution modes
# --------------------------------------------------------------------------------------------


def cpu_supports_bf16() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (AVX-512 BF16 / AMX); elsewhere bf16 is emulated and slow."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # build without oneDNN
        return False


@dataclass(frozen=True)
class RunMode:
    """How a network is executed; :func:`resolve_mode` picks one per precision and device."""

    precision: str  #: "fp32", "fast" (or "onnx" for an ONNX Runtime session)
    amp_dtype: torch.dtype | None = None  #: autocast dtype (None: fp32 math)
    channels_last: bool = False
    fuse_bn: bool = False  #: fold eval-mode BatchNorms into the preceding convolutions (on a copy)
    fold_upsample: bool = False  #: nearest ×2 up-sampling + 3×3 conv → one 2×2 conv on the coarse grid
    cast_weights: bool = False  #: store conv/linear weights in ``amp_dtype`` once, not per call
    cudnn_benchmark: bool = False
    cuda_graphs: bool = False

    def as_dict(self) -> dict:
        """JSON-friendly fields (dtype as its short name)."""
        d = asdict(self)
        d["amp_dtype"] = str(self.amp_dtype).replace("torch.", "") if self.amp_dtype is not None else "float32"
        return d

    def label(self) -> str:
        """Short description, e.g. ``fast (bfloat16, channels_last, BN folded)``."""
        if self.precision == "fp32":
            return "fp32 eager"
        if self.precision != "fast":  # e.g. "onnx": another runtime
            return self.precision
        parts = [self.as_dict()["amp_dtype"]]
        parts += [name for name, on in (("channels_last", self.channels_last), ("BN folded", self.fuse_bn),
                                        ("up-conv folded", self.fold_upsample), ("weights pre-cast", self.cast_weights),
                                        ("cudnn.benchmark", self.cudnn_benchmark), ("CUDA graphs", self.cuda_graphs)) if on]
        return f"fast ({', '.join(parts)})"


def resolve_mode(
    precision: str, device: torch.device, *, amp: str | None = None, cuda_graphs: bool = False
) -> RunMode:
    """The :class:`RunMode` for ``precision`` on ``device``.

    ``precision``: ``fp32`` (eager, full precision), ``fast`` (see the module docstring) or ``auto``,
    which means ``fast`` unless ``amp="none"`` asks for full precision (the behaviour of callers that
    only know ``amp``). ``amp`` refines the fast mode's dtype: ``None``/``auto`` = the device's best
    (bf16 on a bf16-capable CPU, bf16 or fp16 on CUDA), ``bf16``/``fp16`` = that dtype, ``none`` = fp32
    math with the fast layout. ``cuda_graphs`` only applies on CUDA.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        precision = "fp32" if amp == "none" else "fast"
    if precision == "fp32":
        if amp not in (None, "none", "auto"):
            raise ConfigError(f"precision='fp32' contradicts amp={amp!r}; drop one of them")
        return RunMode("fp32")
    cuda = device.type == "cuda"
    if amp in (None, "auto"):
        dtype = resolve_amp("auto", device) if cuda else (torch.bfloat16 if cpu_supports_bf16() else None)
    else:
        dtype = resolve_amp(amp, device)
    if device.type not in ("cpu", "cuda"):  # other backends: reduced precision only, no layout tricks
        return RunMode("fast", dtype)
    # the up-conv fold and the weight pre-cast were measured on CPUs only (docs/speed.md): CUDA keeps the
    # fast mode that was timed on the GPU (cuDNN's 3×3 kernels may well beat the folded 2×2 there)
    return RunMode("fast", dtype, channels_last=True, fuse_bn=True, fold_upsample=not cuda,
                   cast_weights=dtype is not None and not cuda, cudnn_benchmark=cuda, cuda_graphs=cuda and cuda_graphs)


def _autocast(device: torch.device, dtype: torch.dtype | None, cache: bool = True) -> ContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    # a CUDA graph must not capture autocast's weight cache (freed when the context exits)
    return torch.autocast(device_type=device.type, dtype=dtype, cache_enabled=cache)


@contextlib.contextmanager
def _cudnn_benchmark(device: torch.device, on: bool) -> Iterator[None]:
    """``torch.backends.cudnn.benchmark = on`` for the duration of one call on CUDA (restored after),
    so that a fast runner does not change the fp32 reference's cuDNN settings."""
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on  # cuDNN times its algorithms once per input shape, then reuses the best
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


class ModelRunner:
    """A network run in one :class:`RunMode`: ``runner(x)`` maps a normalised, stride-padded batch
    (B, C, H, W) float32 on ``device`` to float32 logits (B, num_classes, H, W).

    The fp32 mode runs ``model`` itself; the fast mode runs an optimised copy, so the caller's module
    (and its BatchNorms) are never modified.
    """

    def __init__(self, model: nn.Module, device: torch.device, mode: RunMode) -> None:
        self.device, self.mode = device, mode
        model = model.to(device).eval()
        if mode.precision == "fast":
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
        self.model = model
        self._graphs = _CudaGraphCache(self._forward, device) if mode.cuda_graphs and device.type == "cuda" else None

    def _forward(self, x: torch.Tensor, cache: bool = True) -> torch.Tensor:
        if self.mode.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _cudnn_benchmark(self.device, self.mode.cudnn_benchmark), _autocast(self.device, self.mode.amp_dtype, cache):
            out = main_logits(self.model(x))
        return out.float()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            if self._graphs is not None:
                return self._graphs(x)
            return self._forward(x)


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


# --------------------------------------------------------------------------------------------
# predictor
# --------------------------------------------------------------------------------------------


class Predictor:
    """Batched inference on frames of any size.

    Args:
        model: a network built by ``create_model`` (eval mode is set here; never modified).
        normalization: (mean, std) applied to raw frames; default: ``model.normalization`` from its
            checkpoint, or per-frame statistics for a model without one (classical detectors).
        device: ``auto``, ``cpu``, ``cuda``…
        threshold: probability threshold for masks and targets.
        amp: ``none`` (fp32), ``bf16``, ``fp16``, ``auto`` or None (the default: let ``precision`` decide).
        batch_size: frames of the same size are run together, this many at a time.
        precision: ``auto`` (default: the fast mode, or fp32 when ``amp="none"``), ``fast`` or ``fp32``
            (forces the reference path); see :func:`resolve_mode`.
        cuda_graphs: on CUDA, replay the fast mode from CUDA graphs (one per batch shape).
    """

    def __init__(
        self,
        model: nn.Module,
        normalization: tuple[float, float] | None = None,
        *,
        device: str | torch.device = "auto",
        threshold: float = 0.5,
        amp: str | None = None,
        batch_size: int = 8,
        connectivity: int = 8,
        precision: str = "auto",
        cuda_graphs: bool = False,
    ) -> None:
        device = resolve_device(device)
        mode = resolve_mode(precision, device, amp=amp, cuda_graphs=cuda_graphs)
        self._setup(device, normalization or getattr(model, "normalization", None), threshold, batch_size, connectivity)
        self.model = model.to(device).eval()
        self.stride = int(getattr(model, "stride", 1))
        self.mode = mode
        self.amp_dtype = mode.amp_dtype
        self._runner: Callable[[torch.Tensor], torch.Tensor] = ModelRunner(self.model, device, mode)
        log.debug("predictor on %s, %s", device, mode.label())

    def _setup(self, device: torch.device, normalization, threshold: float, batch_size: int, connectivity: int) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.device = device
        self.normalization = tuple(normalization) if normalization is not None else None
        self.threshold = threshold
        self.batch_size = batch_size
        self.connectivity = connectivity

    @classmethod
    def from_checkpoint(cls, spec: str | Path, **kwargs) -> "Predictor":
        """A predictor for a checkpoint file or a classical detector's name."""
        device = resolve_device(kwargs.pop("device", "auto"))
        return cls(load_predictor_model(spec, device), device=device, **kwargs)

    @classmethod
    def from_onnx(
        cls,
        path: str | Path,
        normalization: tuple[float, float] | None = None,
        *,
        threshold: float = 0.5,
        batch_size: int = 8,
        connectivity: int = 8,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
    ) -> "Predictor":
        """A predictor backed by ONNX Runtime on a file written by ``irstd export``.

        ``normalization`` and the stride default to the values ``irstd export`` stored in the file.
        Outputs are computed by ONNX Runtime and copied to CPU tensors.
        """
        from .export import OnnxRunner

        runner = OnnxRunner(path, threads=threads, providers=providers)
        norm = normalization if normalization is not None else runner.normalization
        self = cls.__new__(cls)
        self._setup(torch.device("cpu"), norm, threshold, batch_size, connectivity)
        self.model = None
        self.stride = runner.stride
        self.mode = RunMode("onnx")
        self.amp_dtype = None
        self._runner = runner
        return self

    def _normalise(self, frame: np.ndarray) -> np.ndarray:
        frame = np.asarray(frame, dtype=np.float32)
        if frame.ndim != 2:
            raise DataError(f"expected a single-channel (H, W) frame, got shape {frame.shape}")
        if self.normalization is not None:
            mean, std = self.normalization
        else:
            mean, std = float(frame.mean()), float(frame.std())
        return (frame - mean) / max(std, 1e-6)

    @torch.inference_mode()
    def probabilities(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Probability maps (H, W) float32, one per frame, each at its frame's size."""
        out: list[np.ndarray | None] = [None] * len(frames)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, frame in enumerate(frames):
            by_shape.setdefault(np.shape(frame), []).append(i)
        for indices in by_shape.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                x = torch.from_numpy(np.stack([self._normalise(frames[i]) for i in chunk]))[:, None]  # (B,1,H,W)
                x, size = pad_to_multiple(x.to(self.device), self.stride)
                logits = self._runner(x)  # (B, 1, H', W') float32
                probs = torch.sigmoid(crop_to(logits, size))[:, 0].cpu().numpy()
                for i, p in zip(chunk, probs):
                    out[i] = p
        return out  # type: ignore[return-value]

    def predict(self, frames: np.ndarray | Sequence[np.ndarray]) -> list[Prediction]:
        """Probabilities, masks and targets for one frame (H, W) or a sequence of frames."""
        if isinstance(frames, np.ndarray) and frames.ndim == 2:
            frames = [frames]
        results = []
        for prob in self.probabilities(list(frames)):
            mask = prob > self.threshold
            results.append(Prediction(prob, mask, extract_targets(prob, mask, self.connectivity)))
        return results
