"""Paper figures: the published cost (and, where given, accuracy and speed) of the project's learned models.

Each :class:`Published` entry is one figure set from one source, for one configuration. The
seed paper (Deng & Yang 2025, Table 1) prints "Params (M)", "FLOPs (G)" and FPS; IRSTD papers use
thop's multiply-accumulate count for the latter, so it is stored as ``gmacs``. ``matches_default``
says whether the entry describes the configuration that ``create_model(name)`` builds, i.e.
whether measured/published ratios are meaningful. Figures not stated by a source are ``None``.
This module is data only, a public table (:data:`PUBLISHED`, model name → its figure sets):
``irstd models --table``, the benchmark reports and the tests read it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Published", "PUBLISHED", "published_for", "reference_for"]

SEED = "seed Table 1 (Deng & Yang 2025)"
# the benchmark table of the BasicIRSTD toolbox's README (github.com/XinyiYing/BasicIRSTD, columns
# #Params and FLOPs), counted by its cal_params.py with thop
STANDARD = "BasicIRSTD README benchmark table (thop count)"


@dataclass(frozen=True)
class Published:
    """One published figure set for a model configuration."""

    model: str
    params_m: float | None
    gmacs: float | None
    source: str
    config: str = ""
    matches_default: bool = True
    iou: float | None = None
    f1: float | None = None
    fps: float | None = None
    note: str = ""


PUBLISHED: dict[str, tuple[Published, ...]] = {
    "sgem_unet": (Published("sgem_unet", 8.69, 15.92, SEED, "base width 32", fps=342.0, note="FPS: seed Table 1"),),
    "acm": (
        Published(
            "acm",
            0.398,
            0.40,
            STANDARD,
            "ASKC-ResUNet, 3 blocks/stage, widths 8-16-32-64",
            note="thop charges transposed convs 4x their MACs (+0.05 G)",
        ),
    ),
    # the seed's ACM row: its 1.54 M is the release's ASKC-ResNet-FPN at 4 blocks/stage, widths 16-128
    "acm_fpn": (
        Published(
            "acm_fpn",
            1.54,
            1.31,
            SEED,
            "ASKC-ResNet-FPN, 4 blocks/stage, widths 16-32-64-128",
            note="the seed's ACM row; its GMACs are 1.20x ours, as for alcnet",
        ),
    ),
    "alcnet": (
        Published(
            "alcnet",
            0.37,
            4.34,
            SEED,
            "MPCM-ResNet-FPN, full-resolution stem, 4 blocks/stage",
            note="the seed's GMACs are 1.21x ours",
        ),
        Published(
            "alcnet",
            0.427,
            0.38,
            STANDARD,
            "BasicIRSTD's ALCNet = ACM's ASKC-ResNet-FPN without the local contrast layer",
            matches_default=False,
            note="a different network, see docs/baselines.md",
        ),
    ),
    "dnanet": (Published("dnanet", 4.70, 14.28, SEED, "widths 16-256, blocks (2, 2, 2, 2)"),),
    "uiunet": (Published("uiunet", 50.54, 54.50, SEED, "as released"),),
    "isnet": (
        Published(
            "isnet",
            1.09,
            30.63,
            SEED,
            "as released",
            note="params include 0.104 M of modules the release never calls",
        ),
    ),
    "abcnet": (Published("abcnet", 9.09, 5.31, SEED),),
    "egpnet": (
        Published(
            "egpnet", 3.54, 19.55, SEED, "EGPNet-like: rebuilt from the paper's text (no public code)"
        ),
    ),
    "iaanet": (Published("iaanet", 14.05, 436.79, SEED),),
}


def published_for(name: str) -> tuple[Published, ...]:
    """Every published figure set for model ``name`` (empty when none is known)."""
    return PUBLISHED.get(name, ())


def reference_for(name: str) -> Published | None:
    """The published figure set that describes ``create_model(name)``'s configuration, if any."""
    return next((p for p in published_for(name) if p.matches_default), None)
