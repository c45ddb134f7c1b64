"""Training losses. Every function takes LOGITS (models never apply the sigmoid themselves).

* :func:`soft_iou_loss`: SoftIoU of the SGEM paper, equation 4, computed per image then averaged;
* :func:`bce_loss`: binary cross-entropy with logits, mean over every pixel;
* :func:`soft_iou_bce_loss`: their sum;
* :func:`target_balanced_bce`: BCE over target pixels in which every target weighs the same,
  whatever its area (the recall term ``ModelLoss(target_weight=...)`` adds);
* :class:`ModelLoss`: scores a model's whole output (main logits, deep-supervision ``"aux"`` logits,
  ``"edge"`` logits, see :mod:`irstd.models.base`);
* :func:`model_loss_settings`: the :class:`ModelLoss` arguments of a training run, from a recipe
  (``"release"``: the settings a model declares in ``release_loss``, i.e. its authors' training
  loss; ``"project"``: the same settings for every model) and explicit overrides.

Targets are float maps in [0, 1] of the logits' shape, typically (B, 1, H, W).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .core.errors import ConfigError

__all__ = [
    "BCELoss",
    "ModelLoss",
    "SoftIoUBCELoss",
    "SoftIoULoss",
    "bce_loss",
    "EMPTY_MASK_MODES",
    "LOSS_RECIPES",
    "PROJECT_LOSS",
    "create_loss",
    "mask_edges",
    "mask_gradient_edges",
    "model_loss_settings",
    "soft_iou_bce_loss",
    "soft_iou_loss",
    "target_balanced_bce",
]


def _check_pair(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Shape check; returns the target in the logits' floating dtype."""
    if logits.shape != target.shape:
        raise ValueError(f"logits of shape {tuple(logits.shape)} and target of shape {tuple(target.shape)} differ")
    if logits.ndim < 2:
        raise ValueError(f"expected a batch (B, ...) of maps, got shape {tuple(logits.shape)}")
    return target.to(dtype=logits.dtype)


#: how SoftIoU scores an image whose mask is empty (see :func:`soft_iou_loss`)
EMPTY_MASK_MODES = ("softiou", "bce")


def soft_iou_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0,
                  empty: str = "softiou") -> torch.Tensor:
    """SoftIoU loss (SGEM paper, eq. 4) on ``p = sigmoid(logits)``, per image then batch mean.

    For image b with sums over its pixels: ``L_b = 1 − (Σ p·t + s) / (Σ p + Σ t − Σ p·t + s)``,
    smoothing term ``s = smooth`` (default 1, added to numerator and denominator so an empty mask
    with an empty prediction scores 0); the loss is ``mean_b L_b``. Pooling the sums over the whole
    batch instead (as some public code does) lets big targets drown small ones; we do not.

    Empty masks (background crops, target-free frames): there ``L_b = Σp / (Σp + s)``, whose gradient
    ``s / (Σp + s)²`` per unit of probability vanishes as the false alarms grow; a frame full of clutter
    is the one that gets the weakest push. ``empty="bce"`` scores each image with an all-zero mask by its
    own pixel-mean BCE instead (``−mean log(1 − p)``, gradient ``p / N`` per logit: it grows with the
    false alarm), still one term per image in the batch mean. ``empty="softiou"`` (default) keeps the
    formula above for every image (the behaviour of every run before the negatives option).
    Shapes: logits and target (B, ...) alike, target in [0, 1].
    """
    target = _check_pair(logits, target)
    if empty not in EMPTY_MASK_MODES:
        raise ConfigError(f"empty_masks must be one of {', '.join(EMPTY_MASK_MODES)}, got {empty!r}")
    p = torch.sigmoid(logits).flatten(1)  # (B, N)
    t = target.flatten(1)
    inter = (p * t).sum(dim=1)  # (B,)
    union = p.sum(dim=1) + t.sum(dim=1) - inter
    per_image = 1.0 - (inter + smooth) / (union + smooth)  # (B,)
    if empty == "bce":
        is_empty = t.sum(dim=1) == 0  # (B,)
        if bool(is_empty.any()):
            bce = F.binary_cross_entropy_with_logits(logits.flatten(1), t, reduction="none").mean(dim=1)  # (B,)
            per_image = torch.where(is_empty, bce, per_image)  # the gradient follows the chosen term only
    return per_image.mean()


def bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits, mean over every element."""
    return F.binary_cross_entropy_with_logits(logits, _check_pair(logits, target), reduction="mean")


def soft_iou_bce_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0,
                      empty: str = "softiou") -> torch.Tensor:
    """``soft_iou_loss + bce_loss`` (weights 1 and 1); ``empty`` as in :func:`soft_iou_loss`."""
    return soft_iou_loss(logits, target, smooth, empty) + bce_loss(logits, target)


#: side of the square window whose mask count stands for a target's area in :func:`target_balanced_bce`
TARGET_WINDOW = 9


def target_balanced_bce(logits: torch.Tensor, target: torch.Tensor, window: int = TARGET_WINDOW) -> torch.Tensor:
    """BCE of the target pixels, each target weighing the same whatever its area; batch mean.

    Pixel-mean losses let one 80-px target outweigh eighty 1-px ones, so a model can score well while
    missing the faint dots. Here a target pixel ``i`` weighs ``w_i = 1 / n_i``, where ``n_i`` is the count
    of mask pixels in the ``window × window`` square around it: for a target that fits the window and
    lies ``window // 2`` px clear of the others, ``n_i`` is its area, so its weights sum to 1 (larger
    targets sum to a little more). Image b scores ``Σ w_i·BCE_i / Σ w_i`` over its target pixels, i.e.
    about the mean over its targets of their mean BCE; images without a target score 0 and the batch
    mean is taken over those with one. No connected-component labelling, so it runs on any device.
    Shapes: logits and target (B, 1, H, W) alike, target in [0, 1] (pixels > 0.5 count as target).
    """
    target = _check_pair(logits, target)
    if logits.ndim != 4:
        raise ValueError(f"expected (B, 1, H, W) maps, got shape {tuple(logits.shape)}")
    fg = (target > 0.5).to(logits.dtype)  # (B, 1, H, W)
    count = F.avg_pool2d(fg, window, stride=1, padding=window // 2, count_include_pad=True) * window * window
    w = fg / count.clamp_min(1.0)  # (B, 1, H, W); 0 off the targets
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    per_image = (w * bce).flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1e-12)  # (B,)
    has = fg.flatten(1).sum(1) > 0
    if not bool(has.any()):
        return logits.sum() * 0.0  # keeps the graph (DDP) and the dtype
    return per_image[has].mean()


class SoftIoULoss(nn.Module):
    """Module wrapper of :func:`soft_iou_loss`."""

    def __init__(self, smooth: float = 1.0, empty: str = "softiou") -> None:
        super().__init__()
        self.smooth, self.empty = smooth, empty

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return soft_iou_loss(logits, target, self.smooth, self.empty)


class BCELoss(nn.Module):
    """Module wrapper of :func:`bce_loss`."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return bce_loss(logits, target)


class SoftIoUBCELoss(nn.Module):
    """Module wrapper of :func:`soft_iou_bce_loss`."""

    def __init__(self, smooth: float = 1.0, empty: str = "softiou") -> None:
        super().__init__()
        self.smooth, self.empty = smooth, empty

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return soft_iou_bce_loss(logits, target, self.smooth, self.empty)


_LOSSES: dict[str, type[nn.Module]] = {
    "softiou": SoftIoULoss,
    "bce": BCELoss,
    "softiou_bce": SoftIoUBCELoss,
}


def create_loss(name: str, **kwargs: Any) -> nn.Module:
    """Build a loss module by name: ``"softiou"``, ``"bce"`` or ``"softiou_bce"``."""
    try:
        cls = _LOSSES[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown loss {name!r}; known losses: {', '.join(sorted(_LOSSES))}") from None
    return cls(**kwargs)


@torch.no_grad()
def mask_edges(mask: torch.Tensor) -> torch.Tensor:
    """Binary edge map of a (B, 1, H, W) mask by a 3×3 morphological gradient.

    A pixel is edge (1) when its 3×3 neighbourhood holds both target and background, i.e.
    dilation − erosion: a 2-px band straddling every target boundary (a 1-px target gives its
    3×3 block). Out-of-image pixels are ignored (neither target nor background), so a target
    touching the border has no edge along the border. Non-zero mask values are target.
    Returns a float tensor of the mask's shape (float32 for integer masks), without gradient.
    """
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask_edges expects a (B, 1, H, W) mask, got shape {tuple(mask.shape)}")
    m = (mask != 0).float()
    dilated = F.max_pool2d(m, kernel_size=3, stride=1, padding=1)  # pads with -inf: border ignored
    eroded = -F.max_pool2d(-m, kernel_size=3, stride=1, padding=1)
    edges = dilated - eroded
    return edges.to(mask.dtype if mask.is_floating_point() else torch.float32)


@torch.no_grad()
def mask_gradient_edges(mask: torch.Tensor) -> torch.Tensor:
    """Gradient-magnitude edge map of a (B, 1, H, W) mask (ISNet's edge target).

    The mask is binarised (non-zero = target), differentiated by central differences
    (``m[y+1] − m[y−1]`` and ``m[x+1] − m[x−1]``, zero padding outside the image, as the release's
    ``Get_gradient_nopadding`` kernels), and the magnitude ``sqrt(dy² + dx²)`` is clamped to 1: it is
    1 on the pixels just inside and just outside a boundary, 0 elsewhere (the release's map reaches
    √2 at corners and carries a 1e-3 floor from its ``sqrt(· + 1e-6)``; a BCE target must lie in
    [0, 1], and the floor only serves the gradient of a learned map). Returns a float tensor.
    """
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask_gradient_edges expects a (B, 1, H, W) mask, got shape {tuple(mask.shape)}")
    m = (mask != 0).float()
    dy = F.pad(m, (0, 0, 1, 1))[:, :, 2:] - F.pad(m, (0, 0, 1, 1))[:, :, :-2]  # (B, 1, H, W)
    dx = F.pad(m, (1, 1, 0, 0))[..., 2:] - F.pad(m, (1, 1, 0, 0))[..., :-2]
    edges = torch.sqrt(dy * dy + dx * dx).clamp(max=1.0)
    return edges.to(mask.dtype if mask.is_floating_point() else torch.float32)


_EDGE_TARGETS = {"band": mask_edges, "gradient": mask_gradient_edges}
_AUX_REDUCTIONS = ("mean", "sum")


class ModelLoss(nn.Module):
    """Loss of a model's full output, tensor or training-mode dict (see :mod:`irstd.models.base`).

    * ``"logits"`` and each ``"aux"`` logit map are scored by the ``base`` loss against the mask,
      weight 1 for the main map and ``aux_weight`` for each side map, then ``aux_reduction="mean"``
      averages, ``(L_main + aux_weight·Σ L_aux) / (1 + aux_weight·n_aux)`` (the plain mean of DNANet's
      deep supervision when ``aux_weight = 1``), and ``"sum"`` adds, ``L_main + aux_weight·Σ L_aux``
      (UIU-Net's 7 and ABC's 6 terms);
    * ``"edge"`` logits (one map, or a list whose terms are averaged) are scored against an edge map
      of the mask (``edge_target``: ``"band"``, :func:`mask_edges`; ``"gradient"``,
      :func:`mask_gradient_edges`) by ``edge_weight·BCE + edge_iou_weight·SoftIoU`` and added:
      ``total = seg + L_edge`` (ISNet's release: 10·BCE + 1·SoftIoU against the gradient map);
    * ``target_weight > 0`` adds ``target_weight·``:func:`target_balanced_bce` of the main logits, a
      recall term in which a 1-px target counts as much as an 80-px one;
    * any other key is an error (a silently ignored head would never train).
    """

    KNOWN_KEYS = ("logits", "aux", "edge")

    def __init__(
        self,
        base: str = "softiou",
        aux_weight: float = 1.0,
        edge_weight: float = 1.0,
        aux_reduction: str = "mean",
        edge_iou_weight: float = 0.0,
        edge_target: str = "band",
        empty_masks: str = "softiou",
        target_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if empty_masks not in EMPTY_MASK_MODES:
            raise ConfigError(f"empty_masks must be one of {', '.join(EMPTY_MASK_MODES)}, got {empty_masks!r}")
        self.base_name = base
        # BCE has no empty-mask problem; the SoftIoU bases take the mode
        self.base = create_loss(base) if base == "bce" else create_loss(base, empty=empty_masks)
        self.empty_masks = empty_masks
        if min(aux_weight, edge_weight, edge_iou_weight, target_weight) < 0:
            raise ConfigError(
                f"loss weights must be >= 0, got aux_weight={aux_weight}, edge_weight={edge_weight}, "
                f"edge_iou_weight={edge_iou_weight}, target_weight={target_weight}"
            )
        if aux_reduction not in _AUX_REDUCTIONS:
            raise ConfigError(f"aux_reduction must be one of {', '.join(_AUX_REDUCTIONS)}, got {aux_reduction!r}")
        if edge_target not in _EDGE_TARGETS:
            raise ConfigError(f"edge_target must be one of {', '.join(_EDGE_TARGETS)}, got {edge_target!r}")
        self.aux_weight = float(aux_weight)
        self.edge_weight = float(edge_weight)
        self.aux_reduction = aux_reduction
        self.edge_iou_weight = float(edge_iou_weight)
        self.edge_target = edge_target
        self.target_weight = float(target_weight)

    def settings(self) -> dict[str, Any]:
        """The constructor arguments, e.g. for a run's log: ``ModelLoss(**loss.settings())`` rebuilds it."""
        return {
            "base": self.base_name,
            "aux_weight": self.aux_weight,
            "edge_weight": self.edge_weight,
            "aux_reduction": self.aux_reduction,
            "edge_iou_weight": self.edge_iou_weight,
            "edge_target": self.edge_target,
            "empty_masks": self.empty_masks,
            "target_weight": self.target_weight,
        }

    @staticmethod
    def _as_list(x: torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        return [x] if isinstance(x, torch.Tensor) else list(x)

    def parts(self, output: torch.Tensor | dict[str, Any], target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every term, for logging: ``main``, ``aux`` (mean of side losses, if any), ``edge`` (its BCE,
        if any), ``edge_iou`` (its SoftIoU, if weighted), ``target`` (the target-balanced BCE of the
        main logits, if ``target_weight``), ``total`` (the value :meth:`forward` returns; the others are detached)."""
        if isinstance(output, torch.Tensor):
            output = {"logits": output}
        if not isinstance(output, dict) or "logits" not in output:
            raise ValueError(f"model output must be a logits tensor or a dict with 'logits', got {type(output).__name__}")
        unknown = sorted(set(output) - set(self.KNOWN_KEYS))
        if unknown:
            raise ValueError(f"ModelLoss cannot score output key(s) {unknown}; known keys: {list(self.KNOWN_KEYS)}")

        main = self.base(output["logits"], target)
        out: dict[str, torch.Tensor] = {"main": main.detach()}
        aux = [self.base(a, target) for a in self._as_list(output.get("aux", []))]
        if aux:
            aux_sum = torch.stack(aux).sum()
            seg = main + self.aux_weight * aux_sum
            if self.aux_reduction == "mean":
                seg = seg / (1.0 + self.aux_weight * len(aux))
            out["aux"] = (aux_sum / len(aux)).detach()
        else:
            seg = main
        total = seg
        if "edge" in output:
            edge_maps = self._as_list(output["edge"])
            edge_target = _EDGE_TARGETS[self.edge_target](target)
            edge = torch.stack([bce_loss(e, edge_target) for e in edge_maps]).mean()
            out["edge"] = edge.detach()
            total = total + self.edge_weight * edge
            if self.edge_iou_weight:
                edge_iou = torch.stack([soft_iou_loss(e, edge_target, empty=self.empty_masks)
                                        for e in edge_maps]).mean()
                out["edge_iou"] = edge_iou.detach()
                total = total + self.edge_iou_weight * edge_iou
        if self.target_weight:
            balanced = target_balanced_bce(output["logits"], target)
            out["target"] = balanced.detach()
            total = total + self.target_weight * balanced
        out["total"] = total
        return out

    def forward(self, output: torch.Tensor | dict[str, Any], target: torch.Tensor) -> torch.Tensor:
        """Scalar loss of ``output`` against the (B, 1, H, W) mask ``target``."""
        return self.parts(output, target)["total"]


#: the settings every model trains with under the ``"project"`` recipe (and models without a
#: declaration under ``"release"``)
PROJECT_LOSS: dict[str, Any] = {
    "base": "softiou",
    "aux_weight": 1.0,
    "edge_weight": 1.0,
    "aux_reduction": "mean",
    "edge_iou_weight": 0.0,
    "edge_target": "band",
    "empty_masks": "softiou",
    "target_weight": 0.0,
}
LOSS_RECIPES = ("release", "project")


def model_loss_settings(
    release_loss: dict[str, Any],
    recipe: str = "release",
    base: str = "auto",
    aux_weight: float | None = None,
    edge_weight: float | None = None,
    empty_masks: str | None = None,
    target_weight: float | None = None,
) -> dict[str, Any]:
    """The :class:`ModelLoss` arguments for a model whose release trains with ``release_loss``.

    ``recipe="release"`` starts from :data:`PROJECT_LOSS` updated with ``release_loss`` (a model's
    ``release_loss`` class attribute: only the keys its authors' training differs in);
    ``"project"`` ignores it. Explicit ``base`` (not ``"auto"``), ``aux_weight`` and ``edge_weight``
    (not ``None``) override either; so do ``target_weight`` and ``empty_masks`` (the trainer sets ``"bce"`` when batches
    carry background crops).
    """
    if recipe not in LOSS_RECIPES:
        raise ConfigError(f"loss_recipe must be one of {', '.join(LOSS_RECIPES)}, got {recipe!r}")
    unknown = sorted(set(release_loss) - set(PROJECT_LOSS))
    if unknown:
        raise ConfigError(f"release_loss declares unknown ModelLoss setting(s) {unknown}")
    settings = dict(PROJECT_LOSS)
    if recipe == "release":
        settings.update(release_loss)
    if base != "auto":
        settings["base"] = base
    if aux_weight is not None:
        settings["aux_weight"] = float(aux_weight)
    if edge_weight is not None:
        settings["edge_weight"] = float(edge_weight)
    if empty_masks is not None:
        settings["empty_masks"] = empty_masks
    if target_weight is not None:
        settings["target_weight"] = float(target_weight)
    ModelLoss(**settings)  # validate now, with the key names in the message, not at the first step
    return settings
