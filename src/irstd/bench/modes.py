"""The benchmark's run modes, in a module without torch (``irstd bench --help`` shows them)."""

from ..inference.precisions import INT8, RUN_PRECISIONS

__all__ = ["MODES"]

#: the PyTorch run modes, ONNX Runtime fp32 on the CPU, and static int8 (ONNX Runtime)
MODES = (*RUN_PRECISIONS, "onnx", INT8)
