"""Export trained networks to other runtimes: ONNX (dynamic batch/height/width) with a parity check, and its
static int8 version (ONNX Runtime QDQ, :mod:`.quantize`)."""

from ..inference.backends.onnx import OnnxRunner
from .onnx import ATOL, OPSET, RTOL, ParityResult, check_onnx_parity, export_onnx
from .quantize import CalibrationSpec, export_int8, quantize_onnx

__all__ = ["ATOL", "OPSET", "RTOL", "CalibrationSpec", "OnnxRunner", "ParityResult", "check_onnx_parity", "export_int8",
           "export_onnx", "quantize_onnx"]
