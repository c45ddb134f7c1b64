"""Export trained networks to other runtimes: ONNX (dynamic batch/height/width) with a parity check, and its
static int8 version (ONNX Runtime QDQ, :mod:`.quantize`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

if TYPE_CHECKING:
    from ..inference.backends.onnx import OnnxRunner
    from .onnx import ATOL, OPSET, RTOL, ParityResult, check_onnx_parity, export_onnx
    from .quantize import CalibrationSpec, export_int8, quantize_onnx

__all__ = ["ATOL", "OPSET", "RTOL", "CalibrationSpec", "OnnxRunner", "ParityResult", "check_onnx_parity", "export_int8",
           "export_onnx", "quantize_onnx"]

__getattr__, __dir__ = lazy_exports(__name__)
