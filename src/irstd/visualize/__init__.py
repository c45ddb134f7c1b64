"""Pictures for people: overlays of detections on frames, and report plots."""

from .overlay import draw_overlay, stretch
from .plots import plot_iou_fps, plot_sweep

__all__ = ["draw_overlay", "plot_iou_fps", "plot_sweep", "stretch"]
