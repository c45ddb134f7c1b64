"""Export trained networks to other runtimes: ONNX (dynamic batch/height/width) with a parity check."""

from ..inference.backends.onnx import OnnxRunner
from .onnx import ATOL, OPSET, RTOL, ParityResult, check_onnx_parity, export_onnx

__all__ = ["ATOL", "OPSET", "RTOL", "OnnxRunner", "ParityResult", "check_onnx_parity", "export_onnx"]
