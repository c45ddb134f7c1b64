"""ONNX export with dynamic batch/height/width and an ONNX Runtime parity check.

The exported graph maps a normalised frame batch ``image`` (B, C, H, W) float32, H and W multiples of
the model's stride, to ``logits`` (B, num_classes, H, W) float32 — the eval-mode main output, no
sigmoid. The file carries a metadata entry ``irstd`` (JSON: :func:`irstd.models.checkpoint.model_metadata`,
the same description a checkpoint holds) so that it can be used without its checkpoint; the ONNX
Runtime backend :class:`irstd.inference.backends.onnx.OnnxRunner` reads it.

The TorchScript-based exporter (``dynamo=False``) is used: it needs only ``onnx``, while the dynamo
exporter also needs ``onnxscript``.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn

from ..core.errors import CheckpointError, ConfigError, IRSTDError, first_line
from ..core.files import atomic_write
from ..core.padding import padded_size
from ..inference.backends.onnx import OnnxRunner, require_onnxruntime
from ..models import main_logits
from ..models.checkpoint import model_metadata
from .defaults import ATOL, OPSET, RTOL

__all__ = ["OPSET", "ATOL", "RTOL", "export_onnx", "check_onnx_parity", "ParityResult"]

log = logging.getLogger(__name__)

INPUT_NAME, OUTPUT_NAME = "image", "logits"


class _Logits(nn.Module):
    """The main logit map only, whatever the wrapped model returns (a tensor or a dict)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return main_logits(self.model(x))


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    example_size: tuple[int, int] = (256, 256),
    opset: int = OPSET,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (eval mode, on the CPU) as ONNX with dynamic batch, height and width.

    ``example_size`` (H, W) only drives the trace; it is rounded up to the stride. ``metadata``
    defaults to :func:`model_metadata`. Returns the path written.
    """
    try:
        import onnx
    except ImportError:
        raise IRSTDError("onnx is not installed: pip install 'sgem-irstd[export]'") from None
    path = Path(path)
    was_training = model.training
    model = model.cpu().eval()
    stride = int(getattr(model, "stride", 1))
    h, w = padded_size(*example_size, stride)
    x = torch.zeros(1, int(getattr(model, "in_chans", 1)), h, w)
    axes = {0: "batch", 2: "height", 3: "width"}
    meta = metadata if metadata is not None else model_metadata(model)

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            # shape checks in forward() are traced as constants (harmless); the exporter's own notices
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
            torch.onnx.export(
                _Logits(model), (x,), tmp, dynamo=False, opset_version=opset, do_constant_folding=True,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
            )
        proto = onnx.load(tmp)
        entry = proto.metadata_props.add()
        entry.key, entry.value = "irstd", json.dumps(meta)
        onnx.save(proto, tmp)

    try:
        atomic_write(path, write)
    except (RuntimeError, TypeError, ValueError) as exc:  # torch.onnx's errors derive from RuntimeError
        name = meta.get("model_name") or type(model).__name__
        raise IRSTDError(f"{name}: ONNX export failed: {first_line(exc)}") from exc
    finally:
        model.train(was_training)
    log.info("wrote %s (%.1f MB, opset %d)", path, path.stat().st_size / 2**20, opset)
    return path


@dataclass
class ParityResult:
    """ONNX Runtime vs PyTorch fp32 eager on random normalised inputs, one entry per input shape."""

    shapes: list[tuple[int, int, int, int]]
    max_abs_diff: list[float]  #: max |onnx − torch| over all logits of that shape
    ref_max_abs: list[float]  #: max |torch| (the scale the relative tolerance applies to)
    atol: float
    rtol: float
    onnxruntime_version: str

    @property
    def worst(self) -> float:
        """The largest difference over all shapes."""
        return max(self.max_abs_diff)

    @property
    def passed(self) -> bool:
        """Every shape within ``atol + rtol · max|torch|``."""
        return all(d <= self.atol + self.rtol * r for d, r in zip(self.max_abs_diff, self.ref_max_abs))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "worst": self.worst, "passed": self.passed}

    def summary(self) -> str:
        """One line: the difference per shape and the verdict."""
        parts = ", ".join(f"{d:.2e} at {'x'.join(map(str, s))}" for s, d in zip(self.shapes, self.max_abs_diff))
        verdict = "OK" if self.passed else "FAILED"
        return (f"max abs logit difference onnxruntime {self.onnxruntime_version} vs PyTorch: {parts} "
                f"(tolerance {self.atol:g} + {self.rtol:g}·max|logit|): {verdict}")

    def int8_summary(self) -> str:
        """Two lines for an int8 file: that it runs (the check), then the logit difference as a reference only.

        int8 rounds weights and activations to 256 levels and is calibrated on real frames; the check's random
        N(0, 1) inputs lie outside that range, so logits far from fp32 there are expected and say nothing of
        accuracy (measured on frames: benchmarks/int8/accuracy.py)."""
        sizes = ", ".join("x".join(map(str, s[2:])) for s in self.shapes)
        return (f"int8 round trip OK: the file loads and runs in onnxruntime {self.onnxruntime_version} at {sizes}\n"
                f"for reference only: on random noise inputs (not frames, outside the calibrated range) its logits "
                f"differ from fp32 PyTorch's by up to {self.worst:.3g}; int8 is expected to differ there and this is "
                f"not an accuracy figure (accuracy on real frames: irstd evaluate --precision int8, "
                f"benchmarks/int8/accuracy.py)")


def check_onnx_parity(
    model: nn.Module,
    path: str | Path,
    *,
    sizes: Sequence[tuple[int, int]] = ((256, 256), (320, 480)),
    batch: int = 2,
    atol: float = ATOL,
    rtol: float = RTOL,
    seed: int = 0,
) -> ParityResult:
    """Run the ONNX file and ``model`` (fp32 eager, CPU) on the same N(0, 1) inputs of each (H, W)
    in ``sizes`` (rounded up to the stride) and compare the logits."""
    if not sizes:
        raise ConfigError("check_onnx_parity needs at least one input size")
    ort = require_onnxruntime()
    runner = OnnxRunner(path)
    model = model.cpu().eval()
    stride = int(getattr(model, "stride", 1))
    gen = torch.Generator().manual_seed(seed)
    shapes, diffs, scales = [], [], []
    for size in sizes:
        h, w = padded_size(*size, stride)
        x = torch.randn(batch, int(getattr(model, "in_chans", 1)), h, w, generator=gen)
        with torch.inference_mode():
            ref = main_logits(model(x)).float()
        out = runner(x)
        if out.shape != ref.shape:
            raise CheckpointError(f"{path}: ONNX output {tuple(out.shape)} differs from PyTorch {tuple(ref.shape)}")
        shapes.append(tuple(x.shape))
        diffs.append(float((out - ref).abs().max()))
        scales.append(float(ref.abs().max()))
    return ParityResult(shapes, diffs, scales, atol, rtol, ort.__version__)
