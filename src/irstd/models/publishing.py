"""Publishing shipped weights: a trained checkpoint becomes fp16 storage, its SHA-256 and a row of the table
that :mod:`irstd.models.pretrained` reads.

Used by ``scripts/publish_weights.py`` (which also measures the metrics and the fp16 → fp32 agreement
that go into the row); see docs/weights.md.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..core.files import atomic_write, atomic_write_text
from .checkpoint import read_checkpoint
from .pretrained import TABLE_FILE, PretrainedTag, file_sha256, reload_table

__all__ = ["convert_checkpoint", "write_tag"]


def convert_checkpoint(src: str | Path, dst: str | Path, dtype: torch.dtype = torch.float16) -> str:
    """Write ``src``'s weights with floating-point tensors in ``dtype`` (integers such as BatchNorm's
    ``num_batches_tracked`` unchanged) and the same metadata plus the storage dtype and the source's
    SHA-256; returns the new file's SHA-256."""
    state, meta = read_checkpoint(src)
    out = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    meta["weights"] = {"dtype": str(dtype).removeprefix("torch."), "source_sha256": file_sha256(src)}
    atomic_write(dst, lambda tmp: save_file(out, tmp, metadata={"irstd": json.dumps(meta)}))
    return file_sha256(dst)


def write_tag(row: PretrainedTag, table: str | Path = TABLE_FILE) -> None:
    """Add ``row`` to the weights table (replacing a row of the same ``model.tag``), sorted by name; a
    ``default`` row clears the mark on the model's other tags."""
    import fcntl  # POSIX only: imported here so that importing irstd.models works everywhere

    table = Path(table)
    # two publishes may finish together: the read-modify-write holds a lock so neither row is lost
    with open(table.with_name(table.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = json.loads(table.read_text())["weights"] if table.is_file() else []
        rows = [r for r in rows if f"{r['model']}.{r['tag']}" != row.name] + [asdict(row)]
        if row.default:  # one default tag per model: the new one takes the mark from the others
            for r in rows:
                if r["model"] == row.model and r["tag"] != row.tag:
                    r["default"] = False
        rows.sort(key=lambda r: (r["model"], r["tag"]))
        atomic_write_text(table, json.dumps({"weights": rows}, indent=1) + "\n")
    reload_table()
