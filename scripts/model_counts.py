"""Measure params and MACs at 1x1x256x256 of every registered model and write the table that
``irstd models`` prints from (src/irstd/cli/model_counts.json). Run it after adding or changing a model:

    PYTHONPATH=src python scripts/model_counts.py
"""

from __future__ import annotations

from irstd.cli.models import COUNTS_FILE, measure_all, write_counts
from irstd.models import list_models

if __name__ == "__main__":
    write_counts(measure_all(list_models()))
    print(f"written: {COUNTS_FILE}")
