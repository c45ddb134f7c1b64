"""ONNX Runtime as an inference backend: a session with the runner interface of :mod:`irstd.inference.runner`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ...core.errors import CheckpointError, DataError, IRSTDError, first_line

__all__ = ["OnnxRunner", "require_onnxruntime"]


def require_onnxruntime():
    """The ``onnxruntime`` module, or an :class:`IRSTDError` telling how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise IRSTDError("onnxruntime is not installed: pip install 'sgem-irstd[export]'") from None
    return onnxruntime


class OnnxRunner:
    """An ONNX Runtime session: ``runner(x)`` maps a (B, C, H, W) float32 tensor to float32 logits on the CPU.

    ``stride`` and ``normalization`` come from the metadata ``irstd export`` stores in the file.
    ``threads`` defaults to torch's intra-op thread count, so both runtimes use the same cores.
    ``spinning=False`` (default) makes ONNX Runtime's idle worker threads sleep instead of spinning
    after each call: spinning threads would steal the cores from PyTorch work in the same process.
    """

    device = torch.device("cpu")

    def __init__(
        self, path: str | Path, *, threads: int | None = None, providers: Sequence[str] | None = None,
        spinning: bool = False,
    ) -> None:
        ort = require_onnxruntime()
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"ONNX file not found: {path}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=list(providers or ["CPUExecutionProvider"]))
        except Exception as exc:  # noqa: BLE001 — onnxruntime raises its own, unexported error types
            raise CheckpointError(f"{path}: not a loadable ONNX model ({first_line(exc)})") from None
        self.path = path
        raw = self.session.get_modelmeta().custom_metadata_map.get("irstd")
        self.metadata: dict[str, Any] = json.loads(raw) if raw else {}
        self.stride = int(self.metadata.get("stride", 1))
        norm = self.metadata.get("normalization")
        self.normalization = (float(norm[0]), float(norm[1])) if norm else None
        self.input_name = self.session.get_inputs()[0].name
        #: ``int8`` for a file quantised by ``irstd export --int8`` (:mod:`irstd.export.quantize`), else ``fp32``
        self.precision: str = str(self.metadata.get("precision", "fp32"))

    def label(self) -> str:
        return f"onnx {self.precision} (ONNX Runtime, CPU)" if self.precision != "fp32" else "onnx (ONNX Runtime, CPU)"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        try:
            out = self.session.run(None, {self.input_name: arr})[0]
        except Exception as exc:  # noqa: BLE001 — onnxruntime's own error types (e.g. a size the graph fixed at export)
            raise DataError(f"{self.path}: ONNX Runtime cannot run an input of shape {tuple(arr.shape)} "
                            f"({first_line(exc, 200)})") from None
        return torch.from_numpy(out)
