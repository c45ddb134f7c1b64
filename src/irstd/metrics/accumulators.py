"""Accumulators over batches: :class:`SegMetrics` (one threshold) and :class:`ThresholdSweep` (many).

Their whole state is an int64 array of per-image count rows (columns in
:data:`~irstd.metrics.counting.COUNT_FIELDS` order): (N, F) for :class:`SegMetrics`, (N, T, F) for
:class:`ThresholdSweep` with T thresholds. ``state_dict()`` gives that array and the settings as
plain picklable values; ``load_state_dict()`` / ``from_state_dict()`` read it back; ``merge(*others)``
appends the images of accumulators from other processes in the order given, so ``compute()``
after merging equals ``compute()`` of one accumulator that saw every image in that order.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence, TypeVar

import numpy as np
import torch

from ..core.errors import ConfigError
from ..core.components import connected_components
from .counting import COUNT_FIELDS, ImageCounts, check_connectivity, counts_to_rows, counts_with_gt
from .curves import SweepResult, logit_thresholds
from .inputs import ArrayLike, check_inputs, paired, probabilities
from .reduction import SegResult, ratio, reduce_rows

__all__ = ["SegMetrics", "ThresholdSweep"]

log = logging.getLogger(__name__)

_F = len(COUNT_FIELDS)
_COL = {name: i for i, name in enumerate(COUNT_FIELDS)}
_A = TypeVar("_A", bound="_CountAccumulator")


class _Rows:
    """A growing int64 array of count rows, shape (N, *row_shape); capacity doubles when full."""

    def __init__(self, row_shape: tuple[int, ...]) -> None:
        self.row_shape = row_shape
        self._buf = np.zeros((0, *row_shape), dtype=np.int64)  # (capacity, *row_shape)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def view(self) -> np.ndarray:
        """The rows so far, (N, *row_shape) (a view: copy it before keeping it)."""
        return self._buf[: self._n]

    def extend(self, block: np.ndarray) -> None:
        """Append a (K, *row_shape) block after the rows so far."""
        block = np.array(block, dtype=np.int64)  # a copy: the block may be a view of this buffer
        if block.shape[1:] != self.row_shape:
            raise ConfigError(f"count rows of shape {block.shape[1:]} do not fit rows of shape {self.row_shape}")
        need = self._n + len(block)
        if need > len(self._buf):
            grown = np.zeros((max(need, 2 * len(self._buf), 16), *self.row_shape), dtype=np.int64)
            grown[: self._n] = self._buf[: self._n]
            self._buf = grown
        self._buf[self._n : need] = block
        self._n = need

    def clear(self) -> None:
        """Forget every row."""
        self._buf, self._n = self._buf[:0], 0


class _CountAccumulator:
    """Shared state handling: count rows, reset, state_dict, load_state_dict, merge."""

    _SETTINGS: tuple[str, ...] = ()  #: constructor arguments the state records
    _rows: _Rows

    def _settings(self) -> dict[str, Any]:
        """The constructor arguments as plain values (arrays copied)."""
        return {k: np.copy(v) if isinstance(v := getattr(self, k), np.ndarray) else v for k in self._SETTINGS}

    def _differing(self, settings: Mapping[str, Any]) -> list[str]:
        """Names of the settings that define the counts (all but ``inputs``) and differ from ``settings``."""
        mine = self._settings()
        return [k for k in mine if k != "inputs" and not np.array_equal(np.asarray(mine[k]), np.asarray(settings[k]))]

    def reset(self) -> None:
        """Forget every image seen so far."""
        self._rows.clear()

    def __len__(self) -> int:
        return len(self._rows)

    def state_dict(self) -> dict[str, Any]:
        """The counts so far and the settings: plain values (arrays, numbers, strings), picklable."""
        rows = self._rows.view().copy()  # (N, *row_shape) int64
        return {"kind": type(self).__name__, "columns": COUNT_FIELDS, "rows": rows, **self._settings()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace the counts by those of ``state`` (from :meth:`state_dict` of the same settings)."""
        self._check_state(state)
        rows = np.asarray(state["rows"])
        if rows.ndim != 1 + len(self._rows.row_shape) or rows.shape[1:] != self._rows.row_shape:
            want = ("N", *self._rows.row_shape)
            raise ConfigError(f"{type(self).__name__} state: rows of shape {rows.shape} do not fit {want}")
        self._rows.clear()
        self._rows.extend(rows)

    @classmethod
    def from_state_dict(cls: type[_A], state: Mapping[str, Any]) -> _A:
        """A new accumulator with the settings and counts of ``state``."""
        settings = {k: state[k] for k in cls._SETTINGS if k in state}
        acc = cls(**settings)
        acc.load_state_dict(state)
        return acc

    def merge(self: _A, *others: _A) -> _A:
        """Append the images of ``others`` (accumulators of the same kind and settings), in order; returns self."""
        for other in others:
            if type(other) is not type(self):
                raise ConfigError(f"cannot merge a {type(other).__name__} into a {type(self).__name__}")
            diff = self._differing(other._settings())
            if diff:
                raise ConfigError(f"cannot merge {type(self).__name__}s whose {', '.join(diff)} differ")
        for other in others:
            self._rows.extend(other._rows.view())
        return self

    def _check_state(self, state: Mapping[str, Any]) -> None:
        name = type(self).__name__
        if state.get("kind") != name:
            raise ConfigError(f"a {state.get('kind')!r} state cannot be loaded into a {name}")
        if tuple(state.get("columns", ())) != COUNT_FIELDS:
            raise ConfigError(f"{name} state: count columns {state.get('columns')!r} are not {COUNT_FIELDS!r}")
        missing = [k for k in self._settings() if k not in state]
        if missing:
            raise ConfigError(f"{name} state: missing {', '.join(missing)}")
        diff = self._differing(state)
        if diff:
            raise ConfigError(f"{name} state: its {', '.join(diff)} differ from this accumulator's")


class SegMetrics(_CountAccumulator):
    """Accumulate per-image counts over batches; ``compute()`` gives a :class:`SegResult`.

    ``update(preds, masks)`` takes logits (``inputs="logits"``) or probabilities (``"probs"``) as a
    (B,1,H,W) tensor on any device, a numpy array, or a list of variable-size (H,W)/(1,H,W) images
    at their original resolution; masks in the same layout, any non-zero value is target.
    The state is an (N, F) int64 array of count rows (see :mod:`irstd.metrics.accumulators`).
    """

    _SETTINGS = ("threshold", "inputs", "distance", "connectivity")

    def __init__(self, threshold: float = 0.5, inputs: str = "logits", distance: float = 3.0, connectivity: int = 8) -> None:
        check_inputs(inputs)
        check_connectivity(connectivity)
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"threshold is a probability in [0, 1], got {threshold!r}")
        self.threshold = float(threshold)
        self.inputs = inputs
        self.distance = float(distance)
        self.connectivity = int(connectivity)
        self._rows = _Rows((_F,))  # (N, F)

    @property
    def per_image(self) -> list[ImageCounts]:
        """Counts of every image in update order (new objects built from the rows)."""
        return [ImageCounts.from_row(r) for r in self._rows.view()]

    @torch.no_grad()
    def update(self, preds: ArrayLike, masks: ArrayLike) -> list[ImageCounts]:
        """Add a batch; returns the new images' counts."""
        new = []
        for p, m in paired(preds, masks):
            binary = (probabilities(p, self.inputs) > self.threshold).cpu().numpy()  # (H, W) bool
            gt_cc = connected_components(m, self.connectivity)
            new.append(counts_with_gt(binary, m, gt_cc, self.distance, self.connectivity))
        self._rows.extend(counts_to_rows(new))  # (B, F)
        return new

    def compute(self) -> SegResult:
        """Metrics over every image since the last reset (NaN fields when nothing was seen)."""
        if not len(self):
            log.warning("SegMetrics.compute() called before any update: every metric is NaN")
        return reduce_rows(self._rows.view())


class ThresholdSweep(_CountAccumulator):
    """Like :class:`SegMetrics` but for many probability thresholds at once (ROC / Pd-Fa curves).

    The default thresholds are :func:`~irstd.metrics.curves.logit_thresholds` (both ends reached).
    The state is an (N, T, F) int64 array: one count row per image and threshold.
    """

    _SETTINGS = ("thresholds", "inputs", "distance", "connectivity")

    def __init__(
        self, thresholds: Sequence[float] | None = None, inputs: str = "logits", distance: float = 3.0, connectivity: int = 8
    ) -> None:
        check_inputs(inputs)
        check_connectivity(connectivity)
        ts = logit_thresholds() if thresholds is None else np.asarray(thresholds, dtype=float)
        if ts.ndim != 1 or ts.size == 0 or np.any((ts < 0) | (ts > 1)):
            raise ConfigError(f"thresholds must be a non-empty list of probabilities in [0, 1], got {thresholds!r}")
        self.thresholds = ts  # (T,)
        self.inputs = inputs
        self.distance = float(distance)
        self.connectivity = int(connectivity)
        self._rows = _Rows((ts.size, _F))  # (N, T, F)

    @property
    def per_image(self) -> list[list[ImageCounts]]:
        """Counts of every image in update order, each a list over the thresholds: ``[image][k]``."""
        return [[ImageCounts.from_row(r) for r in image] for image in self._rows.view()]

    @torch.no_grad()
    def update(self, preds: ArrayLike, masks: ArrayLike) -> None:
        """Add a batch (same layouts as :meth:`SegMetrics.update`)."""
        block = []
        for p, m in paired(preds, masks):
            probs = probabilities(p, self.inputs)  # (H, W)
            gt_cc = connected_components(m, self.connectivity)  # the mask is labelled once
            ts = torch.as_tensor(self.thresholds, dtype=probs.dtype, device=probs.device)  # (T,)
            binaries = (probs[None] > ts[:, None, None]).cpu().numpy()  # (T, H, W), one transfer
            counts = [counts_with_gt(b, m, gt_cc, self.distance, self.connectivity) for b in binaries]
            block.append(counts_to_rows(counts))  # (T, F)
        if block:
            self._rows.extend(np.stack(block))  # (B, T, F)

    def compute(self) -> SweepResult:
        """Per-threshold metrics over every image since the last reset."""
        rows = self._rows.view()  # (N, T, F)
        results = [reduce_rows(rows[:, k]) for k in range(self.thresholds.size)]
        totals = rows.sum(axis=0)  # (T, F)
        fp = totals[:, _COL["fp"]]
        neg = totals[:, _COL["n_pixels"]] - totals[:, _COL["tp"]] - totals[:, _COL["fn"]]  # background = fp + tn
        fpr = np.asarray([ratio(int(a), int(b)) for a, b in zip(fp, neg)])  # (T,)
        return SweepResult(thresholds=self.thresholds.copy(), results=results, fpr=fpr)
