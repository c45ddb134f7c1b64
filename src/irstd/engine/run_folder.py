"""The run folder of a training run: the one place that names its files.

::

    <out>/<name>/config.yaml        resolved configuration
    <out>/<name>/log.jsonl, log.csv one row per epoch (loss, lr, throughput, validation metrics)
    <out>/<name>/last.safetensors   weights + metadata after the latest epoch
    <out>/<name>/last.state.pt      resume state after the latest epoch (weights, optimiser, schedule, history)
    <out>/<name>/best.safetensors   best validation IoU so far
    <out>/<name>/ema.safetensors    moving average of the weights after the latest epoch (``ema_decay`` > 0)
    <out>/<name>/eval-<tag>/        an evaluation of one of its checkpoints (``irstd sweep``)
    <out>/<name>/.epoch-commit.json only while an epoch's files are being renamed into place

The files of one epoch (last, best, ema, the resume state, the logs) are replaced together
(:meth:`RunFolder.epoch_files`, a :class:`~irstd.core.files.FileSet`): a failed write leaves the previous
epoch's whole set, and a kill during the renames is finished by :meth:`RunFolder.recover` on the next
start, which also removes the temporary files a killed writer left.

The trainer, the resume state and the sweeps (:mod:`irstd.experiments`) all take the names from here.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import CheckpointError
from ..core.files import FileSet, atomic_write_text, recover_file_set, remove_stale_temps
from .config import TrainConfig

__all__ = ["CHECKPOINTS", "RunFolder", "load_run_config"]

log = logging.getLogger(__name__)

CONFIG = "config.yaml"
SELECT = "select.txt"
LOG_JSONL = "log.jsonl"
LOG_CSV = "log.csv"
LAST = "last.safetensors"
STATE = "last.state.pt"
BEST = "best.safetensors"
EMA = "ema.safetensors"
JOURNAL = ".epoch-commit.json"
#: the checkpoints a run folder can hold, by the name sweeps and reports use for them
CHECKPOINTS = {"best": BEST, "last": LAST, "ema": EMA}


@dataclass(frozen=True)
class RunFolder:
    """Paths of one run folder (nothing is read or created by building one)."""

    path: Path

    @classmethod
    def of(cls, where: str | Path) -> "RunFolder":
        """The run folder ``where`` names: the folder itself or one of its files (``last.safetensors``)."""
        where = Path(where)
        return cls(where.parent if where.is_file() else where)

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def log_jsonl(self) -> Path:
        return self.path / LOG_JSONL

    @property
    def log_csv(self) -> Path:
        return self.path / LOG_CSV

    @property
    def last(self) -> Path:
        return self.path / LAST

    @property
    def state(self) -> Path:
        return self.path / STATE

    @property
    def best(self) -> Path:
        return self.path / BEST

    @property
    def ema(self) -> Path:
        return self.path / EMA

    def checkpoint(self, kind: str) -> Path:
        """The checkpoint of ``kind`` (a key of :data:`CHECKPOINTS`)."""
        return self.path / CHECKPOINTS[kind]

    def eval_dir(self, tag: str) -> Path:
        """Where an evaluation tagged ``tag`` (test list, checkpoint kind) is written."""
        return self.path / f"eval-{tag}"

    def holds_run(self) -> bool:
        """Whether a run has finished an epoch here (its ``last.safetensors`` exists)."""
        return self.last.exists()

    def write_config(self, cfg: TrainConfig) -> None:
        """Save the resolved configuration (atomically)."""
        atomic_write_text(self.config, yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    @property
    def select(self) -> Path:
        """The names of the run's select frames, one a line: a split file for ``irstd evaluate``."""
        return self.path / SELECT

    def write_select(self, names: list[str]) -> None:
        """Save :attr:`select` (atomically); a run folder from before it gets it on resume."""
        atomic_write_text(self.select, "".join(f"{n}\n" for n in names))

    def read_config(self) -> TrainConfig:
        """The resolved configuration saved here; a missing file is a :class:`CheckpointError`."""
        if not self.config.is_file():
            raise CheckpointError(f"{self.config} not found (is {self.path} a run folder?)")
        return TrainConfig.from_dict(yaml.safe_load(self.config.read_text()) or {}, str(self.config))

    @property
    def journal(self) -> Path:
        return self.path / JOURNAL

    def epoch_files(self, epoch: int) -> FileSet:
        """A set of files to replace together for ``epoch`` (stage each, then ``commit``)."""
        return FileSet(self.journal, label={"epoch": epoch})

    def recover(self) -> None:
        """Make the folder whole after a kill: finish an epoch's interrupted renames, remove stale temporaries."""
        if not self.path.is_dir():
            return
        done = recover_file_set(self.journal)
        if done is not None:
            log.info("%s: finished saving epoch %s (the run stopped while renaming its files)", self.path,
                     done.get("epoch") if isinstance(done, dict) else done)
        stale = remove_stale_temps(self.path, (CONFIG, SELECT, LOG_JSONL, LOG_CSV, LAST, STATE, BEST, EMA, JOURNAL))
        if stale:
            log.info("%s: removed %d temporary file(s) left by an interrupted write", self.path, len(stale))

    def stage_logs(self, files: FileSet, history: list[dict[str, Any]]) -> None:
        """Stage log.jsonl and log.csv of ``history`` into ``files`` (written when it commits)."""
        files.stage(self.log_jsonl, lambda tmp: _write_jsonl(tmp, history))
        files.stage(self.log_csv, lambda tmp: _write_csv(tmp, history))


def _write_jsonl(path: str, history: list[dict[str, Any]]) -> None:
    Path(path).write_text("".join(json.dumps(r) + "\n" for r in history))


def _write_csv(path: str, history: list[dict[str, Any]]) -> None:
    keys = list(dict.fromkeys(k for r in history for k in r))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)


def load_run_config(run_dir: str | Path) -> TrainConfig:
    """The resolved config saved in a run folder."""
    return RunFolder(Path(run_dir)).read_config()
