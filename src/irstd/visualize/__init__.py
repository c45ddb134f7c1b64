"""Pictures for people: overlays of detections on frames, and report plots."""

from .overlay import draw_overlay, draw_tracks, stretch, upscale_factor
from .plots import plot_iou_fps, plot_sweep

__all__ = ["draw_overlay", "draw_tracks", "plot_iou_fps", "plot_sweep", "stretch", "upscale_factor"]
