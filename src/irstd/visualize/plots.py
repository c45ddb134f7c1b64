"""Plots for reports (matplotlib, optional): each returns the path it wrote, or None without matplotlib."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

log = logging.getLogger(__name__)

__all__ = ["plot_sweep"]


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plot (pip install 'sgem-irstd[plot]')")
        return None
    return plt


def plot_sweep(
    fa: Sequence[float], pd: Sequence[float], recall: Sequence[float], precision: Sequence[float],
    path: str | Path, *, title: str = "", ap: float | None = None,
) -> Path | None:
    """Two panels: Pd against Fa (×1e-6, log scale) and pixel precision against recall, one point per threshold;
    ``ap`` (the exact average precision) goes in the PR panel's title."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(fa, pd, "o-")
    a.set_xscale("symlog", linthresh=0.1)  # Fa spans decades from 0 up to the all-on map
    a.set_xlabel("Fa (×1e-6)")
    a.set_ylabel("Pd")
    a.set_title("Pd–Fa over thresholds")
    b.plot(recall, precision, "o-")
    b.set_xlabel("pixel recall")
    b.set_ylabel("pixel precision")
    b.set_title("PR" + (f" (AP {ap:.3f})" if ap is not None else ""))
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
