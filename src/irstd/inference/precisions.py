"""The precision names, the one place they are written, in a module without torch (command options show
them; ``irstd <cmd> --help`` loads no torch). What each run mode does: :mod:`.modes`."""

__all__ = ["COMMAND_PRECISIONS", "INT8", "PRECISIONS", "RUN_PRECISIONS"]

#: how a PyTorch network runs (fp32: as trained, the reference; fast: see :mod:`.modes`). Every other list
#: of precisions is built from these.
RUN_PRECISIONS = ("fp32", "fast")
#: the precision of a quantised ONNX file (ONNX Runtime, CPU; docs/int8.md)
INT8 = "int8"
#: values of every ``precision`` option of the PyTorch backend (auto: fast unless amp="none")
PRECISIONS = (*RUN_PRECISIONS, "auto")
#: what a command's ``--precision`` accepts: a run mode, or int8 (an int8 .onnx file, or a checkpoint quantised)
COMMAND_PRECISIONS = (*RUN_PRECISIONS, INT8)
