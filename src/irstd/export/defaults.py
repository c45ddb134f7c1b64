"""Defaults of ONNX export, its parity check and int8 calibration, in a module without torch (command
options show them; ``irstd <cmd> --help`` loads no torch)."""

__all__ = ["ATOL", "CALIB_FRAMES", "MAX_OPSET", "MIN_OPSET", "OPSET", "RTOL"]

#: ONNX opset of exported files
OPSET = 17
#: opsets ``irstd export --opset`` takes: 13 brings per-channel QuantizeLinear (int8); 20 is the highest of
#: torch's TorchScript exporter, which the export uses
MIN_OPSET, MAX_OPSET = 13, 20
#: parity tolerance: |onnx − torch| ≤ ATOL + RTOL · max|torch| on every logit (fp32 on both sides)
ATOL, RTOL = 1e-4, 1e-4
#: default number of int8 calibration frames
CALIB_FRAMES = 32
