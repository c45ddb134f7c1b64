"""Inference backends other than PyTorch eager: each offers the :class:`irstd.inference.runner.Runner` interface."""
