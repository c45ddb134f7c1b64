"""Plots for reports (matplotlib, optional): each returns the path it wrote, or None without matplotlib."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger(__name__)

__all__ = ["plot_iou_fps", "plot_sweep"]


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


def plot_iou_fps(table: dict[str, Any], path: str | Path) -> Path | None:
    """Scatter of every seed's IoU at its model's FPS (mean marked by a cross); None without matplotlib or FPS."""
    plt = _pyplot()
    if plt is None:
        return None
    points = [(label, row["bench"].get("fps"), [v["iou"] for v in row["per_seed"].values()], row["summary"]["iou"])
              for label, row in table["rows"].items()]
    points = [p for p in points if p[1] and p[2]]
    if not points:
        log.warning("no model has both FPS and test results: no plot")
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for label, fps, ious, summary in points:
        dots = ax.scatter([fps] * len(ious), ious, s=22, alpha=0.75, label=f"{label} (n={len(ious)})")
        ax.scatter([fps], [summary["mean"]], marker="x", s=60, color=dots.get_facecolor()[0])
    env = table.get("environment", {})
    speeds = [p[1] for p in points]
    if max(speeds) > 3 * min(speeds):  # models an order of magnitude apart: log axis, plain numbers on it
        from matplotlib.ticker import NullFormatter, ScalarFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:  # close speeds: a linear axis with some room either side
        pad = 0.1 * max(max(speeds) - min(speeds), 0.1 * max(speeds))
        ax.set_xlim(min(speeds) - pad, max(speeds) + pad)
    ax.set_xlabel(f"FPS (batch 1, {env.get('device_name', '?')})")
    ax.set_ylabel(f"test IoU (%), {table['checkpoint']} checkpoint")
    ax.set_title(f"{table['sweep']}: IoU against speed, one dot per seed (× = mean)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
