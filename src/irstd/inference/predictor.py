"""Run a model on raw frames: normalise, pad to the stride, predict, crop back, extract targets.

:class:`Predictor` is the one inference path used by ``irstd detect``, the service and the Python API.
Frames are 2-D arrays in their native range (8-bit, 16-bit, float); the model's normalisation (from
its checkpoint) is applied here, so callers never normalise by hand, after the input-range policy
(:mod:`irstd.inference.input_range`) has brought a frame of another bit depth into the training range.
Frames larger than ``tile`` run in overlapping tiles (:mod:`irstd.inference.tiling`); with a memory budget
(``max_memory``; :mod:`irstd.inference.memory_budget`) a frame whose estimated peak exceeds it runs in the
largest tiles that fit, or is refused (:class:`~irstd.inference.memory_budget.FrameTooLargeError`).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from ..core.device import resolve_device
from ..core.errors import CheckpointError, ConfigError, DataError
from ..core.padding import crop_to, pad_to_multiple
from ..data.io import declared_bit_depth
from ..data.items import frame_normalization, normalize
from ..models import create_model, load_model, pretrained_tags, resolve_model_spec
from .backends.onnx import OnnxRunner, require_onnxruntime
from .input_range import adapt_range, check_policy, estimate_range
from .memory_budget import (DEFAULT_FRACTION, MemoryBudget, TilePlan, bytes_per_pixel, frame_bytes_per_pixel,
                            resolve_budget)
from .modes import RunMode, resolve_mode
from .runner import ModelRunner, Runner
from .targets import MERGE_DISTANCE, Target, check_merge_distance, extract_targets
from .tiling import check_tiling, run_tiled
from .verifier_protocol import TargetVerifier, apply_verifier

__all__ = ["INT8_HINT", "Prediction", "Predictor", "check_int8_runner", "load_predictor_model", "model_name",
           "pow2_chunks"]

#: how to get an int8 model: a quantised ONNX file (int8 runs in ONNX Runtime only; docs/int8.md)
INT8_HINT = ("precision 'int8' runs a quantised ONNX file: make one with `irstd export CKPT --int8 --calib DATA` "
             "(or irstd.export.export_int8) and pass that .onnx file")


def check_int8_runner(runner: object, precision: str | None) -> None:
    """Refuse ``precision='int8'`` for anything but an int8 ONNX file (one line naming the file)."""
    if precision != "int8":
        return
    require_onnxruntime()
    if not isinstance(runner, OnnxRunner):
        raise ConfigError(INT8_HINT)
    if runner.precision != "int8":
        raise ConfigError(f"{runner.path}: not an int8 file (precision {runner.precision}); {INT8_HINT}")

log = logging.getLogger(__name__)


def pow2_chunks(n: int) -> list[int]:
    """``n`` frames as chunks of powers of two, largest first: 13 -> [8, 4, 1] (``pow2_batches``)."""
    return [1 << b for b in range(n.bit_length() - 1, -1, -1) if n >> b & 1]


@dataclass
class Prediction:
    """The model's answer for one frame, at the frame's own size."""

    prob: np.ndarray  # (H, W) float32 in [0, 1]
    mask: np.ndarray  # (H, W) bool, prob > threshold
    targets: list[Target] = field(default_factory=list)


def load_predictor_model(spec: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """A checkpoint path, shipped weights by name (``sgem_unet.sirst``), a URL with ``#sha256=``,
    or the name of a classical (training-free) detector (:func:`~irstd.models.resolve_model_spec`)."""
    parsed = resolve_model_spec(spec)
    if parsed.kind == "model":
        tags = [f"{spec}.{t}" for t in pretrained_tags(spec)]
        hint = f" or its shipped weights ({', '.join(tags)})" if tags else ""
        raise CheckpointError(f"{spec!r} is a trainable model: pass a checkpoint file{hint}, not its name")
    if parsed.kind == "classical":
        model = create_model(parsed.text).to(device).eval()
        model.model_name = parsed.model  # the registered name: the memory budget's factor is looked up by it
        return model
    return load_model(spec, device)


def model_name(model: nn.Module | Runner) -> str | None:
    """The registered model name of a network or runner (checkpoint or ONNX metadata), None if unknown."""
    meta = getattr(model, "checkpoint_meta", None) or getattr(model, "metadata", None) or {}
    name = meta.get("model_name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else getattr(model, "model_name", None)


class Predictor:
    """Batched inference on frames of any size.

    Args:
        model: a network built by ``create_model`` (eval mode is set here; never modified), or a
            ready :class:`~irstd.inference.runner.Runner` (e.g. an ONNX Runtime session).
        normalization: (mean, std) applied to raw frames; default: the model's (from its checkpoint),
            or per-frame statistics for a model without one (classical detectors).
        device: ``auto``, ``cpu``, ``cuda``… (a runner brings its own).
        threshold: probability threshold for masks and targets.
        precision: ``fp32`` (the reference), ``fast`` (the device's fast mode) or ``auto``; see
            :func:`~irstd.inference.modes.resolve_mode`; ``int8`` only with an int8 ONNX runner
            (:meth:`from_onnx` on a file of ``irstd export --int8``; ``docs/int8.md``). Default None: ``fp32``, unless ``amp`` names a
            reduced dtype, which asks for the fast mode in that dtype — the same default as every command.
        amp: the fast mode's dtype: ``auto``, ``bf16``, ``fp16`` or ``none``.
        batch_size: frames of the same size are run together, this many at a time.
        cuda_graphs: on CUDA, replay the fast mode from CUDA graphs (one per batch shape).
        input_range: ``auto``, ``native``, ``scale`` or ``stretch``: how a frame outside the training
            range (e.g. 16-bit for an 8-bit model) is brought into it; see :mod:`irstd.inference.input_range`.
        tile: run frames with a side above this many pixels in overlapping tiles of this size (a multiple
            of the stride); None: whole frames.
        tile_overlap: pixels each tile extends past its core on every inner side (default ``tile // 4``
            rounded to the stride).
        max_memory: a budget in bytes (or ``"4G"``) for one frame's estimated peak memory, or ``"auto"`` (half
            the available memory, at most 3 GiB; on CUDA also half the device's free memory): a frame above it
            runs in the largest tiles that fit, and one that cannot fit even in small tiles raises
            :class:`~irstd.inference.memory_budget.FrameTooLargeError` (a ``DataError``) before any network
            call; :meth:`admit` checks a file's header against it before decoding. None (default): no budget.
        verifier: a candidate verifier (:class:`~irstd.inference.verifier_protocol.TargetVerifier`, e.g.
            ``irstd.verify.load_verifier()``): targets it rejects leave the targets and the mask (the
            probability map stays the network's); None: every target is kept.
        merge_distance: mask components whose pixels come within this many pixels are one target
            (fragments of one object; :mod:`irstd.inference.targets`); 0: every component is a target.
        pow2_batches: run n frames of one shape as chunks of powers of two (13 as 8 + 4 + 1), so at most
            five batch sizes up to 16 reach the network: oneDNN compiles kernels per batch size, and the
            service's bounded kernel cache holds five (docs/serve.md, "Memory"); measured at no cost per
            frame on the CPU (``benchmarks/batch_split.py``).
    """

    def __init__(
        self,
        model: nn.Module | Runner,
        normalization: tuple[float, float] | None = None,
        *,
        device: str | torch.device = "auto",
        threshold: float = 0.5,
        amp: str | None = None,
        batch_size: int = 8,
        connectivity: int = 8,
        precision: str | None = None,
        cuda_graphs: bool = False,
        input_range: str = "auto",
        tile: int | None = None,
        tile_overlap: int | None = None,
        max_memory: int | str | None = None,
        verifier: TargetVerifier | None = None,
        merge_distance: float = MERGE_DISTANCE,
        pow2_batches: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        check_int8_runner(model, precision)
        if isinstance(model, nn.Module):
            dev = resolve_device(device)
            if precision is None:
                precision = "fp32" if amp in (None, "none") else "auto"
            self.model: nn.Module | None = model.to(dev).eval()
            runner: Runner = ModelRunner(self.model, dev, resolve_mode(precision, dev, amp=amp, cuda_graphs=cuda_graphs))
        elif isinstance(model, Runner):
            self.model, runner = None, model
        else:
            raise ConfigError(f"Predictor takes an nn.Module or a runner, got {type(model).__name__}")
        self.runner = runner
        self.device = runner.device
        self.stride = runner.stride
        self.normalization = tuple(normalization) if normalization is not None else runner.normalization
        self.threshold = threshold
        self.batch_size = batch_size
        self.pow2_batches = pow2_batches
        self.connectivity = connectivity
        self.merge_distance = check_merge_distance(merge_distance)
        self.input_range = check_policy(input_range)
        recorded = getattr(model, "input_range", None) or getattr(runner, "metadata", {}).get("input_range")
        if recorded is None and input_range in ("scale", "stretch"):
            recorded = estimate_range(self.normalization)
        self.training_range: dict | None = recorded
        self.range_actions: Counter[str] = Counter()  # frames per input-range action, for reports
        self.verifier = verifier
        self.tile = tile
        self.tile_overlap: int | None = None
        if tile is not None:
            overlap = tile_overlap if tile_overlap is not None else (tile // 4) // self.stride * self.stride
            check_tiling(tile, overlap, self.stride)
            self.tile_overlap = overlap
        self.model_name = model_name(model if self.model is None else self.model)
        self.memory = self._budget(max_memory, self.model_name)
        self._budget_tiles_logged = False
        log.debug("predictor on %s, %s, memory budget %s", self.device, runner.label(), self.memory)

    def frame_bytes_per_pixel(self) -> float:
        """Estimated peak bytes per pixel of one whole frame with this model and run mode (the service's
        request budget charges frames with it before decoding them)."""
        return frame_bytes_per_pixel(self.model_name, self.mode.precision if self.mode is not None else "fp32")

    def _budget(self, max_memory: int | str | None, name: str | None) -> MemoryBudget | None:
        """The :class:`MemoryBudget` of ``max_memory`` for this model and run mode (None: no budget)."""
        limit = resolve_budget(max_memory)
        if limit is None:
            return None
        if max_memory == "auto" and self.device.type == "cuda":  # activations live on the device
            free, _ = torch.cuda.mem_get_info(self.device)
            limit = min(limit, int(free * DEFAULT_FRACTION))
        precision = self.mode.precision if self.mode is not None else "fp32"
        what = f"{name or 'an unknown model'} ({precision})"
        return MemoryBudget(limit, bytes_per_pixel(name, precision), self.stride, what)

    def admit(self, name: str, height: int, width: int, mode: str) -> None:
        """Refuse a file from its header, before decoding, when it cannot fit the memory budget (the ``admit``
        hook of :func:`~irstd.data.io.load_image` and :func:`~irstd.inference.sources.open_source`)."""
        if self.memory is not None:
            self.memory.check_header(name, height, width, mode)

    @property
    def mode(self) -> RunMode | None:
        """The PyTorch run mode (None for another backend)."""
        return getattr(self.runner, "mode", None)

    @property
    def backend(self) -> str:
        """``torch`` or ``onnx``."""
        return "onnx" if isinstance(self.runner, OnnxRunner) else "torch"

    @property
    def amp_dtype(self) -> torch.dtype | None:
        """The autocast dtype the network runs under (None: fp32)."""
        return self.mode.amp_dtype if self.mode is not None else None

    def label(self) -> str:
        """How the network runs, e.g. ``fp32 eager`` or ``fast (bfloat16, …)``."""
        return self.runner.label()

    @classmethod
    def from_checkpoint(cls, spec: str | Path, **kwargs) -> "Predictor":
        """A predictor for any model argument of :func:`~irstd.models.resolve_model_spec`: a checkpoint file,
        shipped weights, a URL, a classical detector's name, or an ``.onnx`` file (ONNX Runtime)."""
        if resolve_model_spec(spec).is_onnx:
            kwargs.pop("device", None)  # ONNX Runtime runs on the CPU
            kwargs.pop("amp", None)
            if kwargs.get("precision") == "fp32":  # the commands' default: whatever the file holds
                kwargs.pop("precision")
            return cls.from_onnx(spec, **kwargs)
        if kwargs.get("precision") == "int8":
            require_onnxruntime()
            raise ConfigError(f"{spec}: {INT8_HINT}")
        device = resolve_device(kwargs.pop("device", "auto"))
        return cls(load_predictor_model(spec, device), device=device, **kwargs)

    @classmethod
    def from_pretrained(cls, name: str, **kwargs) -> "Predictor":
        """A predictor for shipped weights (``"sgem_unet.sirst"``), or any checkpoint spec; see
        :meth:`from_checkpoint` for the keyword arguments."""
        return cls.from_checkpoint(name, **kwargs)

    @classmethod
    def from_onnx(
        cls,
        path: str | Path,
        normalization: tuple[float, float] | None = None,
        *,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        **kwargs,
    ) -> "Predictor":
        """A predictor backed by ONNX Runtime on a file written by ``irstd export``.

        ``normalization`` and the stride default to the values ``irstd export`` stored in the file.
        Outputs are computed by ONNX Runtime and copied to CPU tensors.
        """
        return cls(OnnxRunner(path, threads=threads, providers=providers), normalization, **kwargs)

    def _normalise(self, frame: np.ndarray) -> np.ndarray:
        """(H, W) raw frame → normalised float32, by the model's statistics or the frame's own."""
        frame = np.asarray(frame)
        if frame.ndim != 2:
            raise DataError(f"expected a single-channel (H, W) frame, got shape {frame.shape}")
        # the container's declared depth (a DepthFrame, or a uint8/uint16 array) is read before the cast
        frame = self._adapt(np.asarray(frame, dtype=np.float32), declared_bit_depth(frame))
        return normalize(frame, self.normalization if self.normalization is not None else frame_normalization(frame))

    def _adapt(self, frame: np.ndarray, bit_depth: int | None = None) -> np.ndarray:
        """The input-range policy on one frame (``bit_depth``: what its container declares, None if unknown);
        the first frame of each kind of adjustment is logged."""
        top = float(frame.max())
        adapted, action = adapt_range(frame, self.training_range, self.input_range, bit_depth=bit_depth)
        self.range_actions[action] += 1
        if action != "native" and self.range_actions[action] == 1:
            train = self.training_range or {}
            how = {"scaled": "scaled to the training full scale", "stretched": "stretched (0.5-99.5th percentiles)",
                   "mismatch": "used as is (input range policy 'native'): results may be wrong"}[action]
            log.warning("a frame with values up to %.6g is outside the model's training range (%s-bit, full scale "
                        "%.6g): %s; later frames like it are not reported", top, train.get("bit_depth"),
                        float(train.get("full_scale", float("nan"))), how)
        return adapted

    def _run(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        """Probabilities of normalised (H, W) arrays of one shape, batched."""
        if self.pow2_batches and len(xs) & (len(xs) - 1):  # not a power of two: its chunks, one call each
            out, start = [], 0
            for k in pow2_chunks(len(xs)):
                out += self._run(xs[start : start + k])
                start += k
            return out
        x = torch.from_numpy(np.stack(xs))[:, None]  # (B, 1, H, W)
        x, size = pad_to_multiple(x.to(self.device), self.stride)
        logits = self.runner(x)  # (B, 1, H', W') float32
        return list(torch.sigmoid(crop_to(logits, size))[:, 0].cpu().numpy())

    def _plan(self, frame: np.ndarray) -> TilePlan:
        """How ``frame`` runs: whole (``tile`` None, ``per_call`` frames a call) or in tiles; raises
        :class:`~irstd.inference.memory_budget.FrameTooLargeError` when it cannot fit the budget."""
        shape = np.shape(frame)
        if self.memory is None or len(shape) != 2:  # (a frame that is not 2-D fails in _normalise, one line)
            if self.tile is not None and max(shape) > self.tile:
                return TilePlan(self.tile, self.tile_overlap or 0, self.batch_size, 0)
            return TilePlan(None, 0, self.batch_size, 0)
        plan = self.memory.plan(shape[0], shape[1], batch=self.batch_size, tile=self.tile, overlap=self.tile_overlap)
        if plan.tile is not None and plan.tile != self.tile and not self._budget_tiles_logged:
            self._budget_tiles_logged = True
            log.info("a %dx%d frame would exceed the memory budget of %d MiB whole: running it in tiles of %d "
                     "(later frames are not reported)", shape[1], shape[0], self.memory.limit >> 20, plan.tile)
        return plan

    def _run_shapes(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        """:meth:`_run` on arrays of mixed shapes (tiles at the frame's edge are smaller)."""
        out: list[np.ndarray | None] = [None] * len(xs)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, x in enumerate(xs):
            by_shape.setdefault(x.shape, []).append(i)
        for indices in by_shape.values():
            for i, p in zip(indices, self._run([xs[i] for i in indices])):
                out[i] = p
        return out  # type: ignore[return-value]

    @torch.inference_mode()
    def probabilities(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Probability maps (H, W) float32, one per frame, each at its frame's size."""
        out: list[np.ndarray | None] = [None] * len(frames)
        plans = [self._plan(frame) for frame in frames]  # every frame checked against the budget before any work
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, (frame, plan) in enumerate(zip(frames, plans)):
            if plan.tile is not None:  # whole-frame normalisation and range policy, then tiles
                out[i] = run_tiled(self._normalise(frame), self._run_shapes, plan.tile, plan.overlap, plan.per_call)
                continue
            by_shape.setdefault(np.shape(frame), []).append(i)
        for indices in by_shape.values():
            step = plans[indices[0]].per_call  # frames of one shape share a plan
            for start in range(0, len(indices), step):
                chunk = indices[start : start + step]
                for i, p in zip(chunk, self._run([self._normalise(frames[i]) for i in chunk])):
                    out[i] = p
        return out  # type: ignore[return-value]

    def predict(self, frames: np.ndarray | Sequence[np.ndarray]) -> list[Prediction]:
        """Probabilities, masks and targets for one frame (H, W) or a sequence of frames."""
        if isinstance(frames, np.ndarray) and frames.ndim == 2:
            frames = [frames]
        frames = list(frames)
        return [self.prediction(prob, frame=f) for prob, f in zip(self.probabilities(frames), frames)]

    def prediction(self, prob: np.ndarray, threshold: float | None = None, frame: np.ndarray | None = None) -> Prediction:
        """Mask and targets of one probability map (H, W) at ``threshold`` (default: the predictor's); with a
        verifier and the raw ``frame`` the map came from, the targets it rejects are dropped."""
        mask = prob > (self.threshold if threshold is None else threshold)
        targets = extract_targets(prob, mask, self.connectivity, self.merge_distance)
        if self.verifier is not None and frame is not None:
            mask, targets = apply_verifier(self.verifier, np.asarray(frame), mask, targets, self.connectivity,
                                           self.merge_distance)
        return Prediction(prob, mask, targets)
