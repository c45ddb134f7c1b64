"""Infrared patch-image (IPI) model (Gao et al., "Infrared Patch-Image Model for Small Target
Detection in a Single Image", IEEE TIP 2013) as a training-free detector.

A ``patch``×``patch`` window slides over the frame with step ``step``; every window, vectorised, is
one column of the patch image ``D`` (patch² × n). The background is non-local self-correlated, so
its patch image is low-rank; a small target is sparse:

    min ‖B‖_* + λ‖T‖_1   subject to   D = B + T,        λ = lam / √max(m, n)

solved by the inexact augmented Lagrange multiplier method (IALM, Lin, Chen & Ma 2010: singular value
thresholding for B, soft thresholding for T, dual ascent with μ ← min(1.5·μ, 10⁷·μ₀)) until
``‖D − B − T‖_F / ‖D‖_F < tol`` or ``max_iter`` iterations. The target image is rebuilt from the
overlapping patches of T (the median of the values landing on each pixel, as in the paper, or their
mean); its positive part is the score map, thresholded by the adaptive rule of
:mod:`irstd.models.classical`.

Each frame is first rescaled to [0, 1] (min–max), which makes the decomposition, and the logits,
invariant to any positive affine change of the input. The solver runs in float64 on the input's
device; frames of a batch are decomposed one after the other.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from typing import Iterator

import torch

from ..core.errors import ConfigError
from ._registry import register_model
from .classical import ClassicalDetector

__all__ = ["IPI", "rpca_ialm", "patch_positions", "singular_value_threshold"]

log = logging.getLogger(__name__)


@contextmanager
def _lapack_threads(t: torch.Tensor) -> Iterator[None]:
    """Run a small CPU LAPACK call on one thread, restoring the thread count afterwards.

    An eigen-decomposition of a few-hundred-square matrix gains nothing from threads, and on a
    loaded machine OpenMP synchronisation made it ~50× slower than single-threaded; GPU tensors
    are left alone.
    """
    if t.device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def singular_value_threshold(m: torch.Tensor, tau: float | torch.Tensor) -> torch.Tensor:
    """``U·max(S − τ, 0)·Vᵀ`` of a 2-D matrix, through the eigen-decomposition of its smaller Gram matrix.

    For a tall (p² × n) patch image the n × n Gram ``MᵀM = V·S²·Vᵀ`` is far cheaper to decompose than
    ``M`` itself, and ``M·V = U·S`` gives the result as ``M·V·diag(max(S − τ, 0)/S)·Vᵀ``. Squaring only
    loses precision on singular values far below τ, which the threshold zeroes anyway (use float64).
    """
    tall = m.shape[0] >= m.shape[1]
    gram = m.t() @ m if tall else m @ m.t()
    with _lapack_threads(gram):
        evals, vecs = torch.linalg.eigh(gram)  # ascending, (k,), (k, k)
    s = evals.clamp(min=0).sqrt()
    keep = s > tau
    if not keep.any():
        return torch.zeros_like(m)
    v, s = vecs[:, keep], s[keep]
    scale = (s - tau) / s  # (r,)
    if tall:
        return (m @ v) * scale @ v.t()  # (p², r)·(r,)·(r, n)
    return v @ (scale[:, None] * (v.t() @ m))


def _spectral_norm(m: torch.Tensor) -> torch.Tensor:
    """Largest singular value of a 2-D matrix, from its smaller Gram matrix."""
    gram = m.t() @ m if m.shape[0] >= m.shape[1] else m @ m.t()
    with _lapack_threads(gram):
        return torch.linalg.eigvalsh(gram)[-1].clamp(min=0).sqrt()


def rpca_ialm(
    d: torch.Tensor, lam: float, tol: float = 1e-6, max_iter: int = 100
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Robust PCA ``D = A + E`` (A low-rank, E sparse) by inexact ALM; returns (A, E, iterations used)."""
    d_norm = torch.linalg.matrix_norm(d)
    if d_norm == 0:
        return torch.zeros_like(d), torch.zeros_like(d), 0
    norm_two = _spectral_norm(d)
    y = d / torch.maximum(norm_two, d.abs().max() / lam)  # dual variable, scaled to be feasible
    a, e = torch.zeros_like(d), torch.zeros_like(d)
    mu = float(1.25 / norm_two)
    mu_max, rho = mu * 1e7, 1.5
    it = 0
    for it in range(1, max_iter + 1):
        y_mu = y / mu
        t = d - a + y_mu
        e = t - t.clamp(-lam / mu, lam / mu)  # soft threshold: sparse part
        a = singular_value_threshold(d - e + y_mu, 1 / mu)  # low-rank part
        z = d - a - e
        y.add_(z, alpha=mu)
        mu = min(mu * rho, mu_max)
        if torch.linalg.matrix_norm(z) / d_norm < tol:
            break
    return a, e, it


def patch_positions(size: int, patch: int, step: int) -> list[int]:
    """Top-left offsets along one axis: every ``step`` from 0, plus the last one so the border is covered."""
    pos = list(range(0, size - patch + 1, step))
    if pos[-1] != size - patch:
        pos.append(size - patch)
    return pos


def _overlap_reduce(values: torch.Tensor, index: torch.Tensor, size: int, how: str) -> torch.Tensor:
    """Combine the patch values (n, p²) that land on each of ``size`` flat pixels: mean or median."""
    flat, vals = index.flatten(), values.flatten()
    if how == "mean":
        acc = torch.zeros(size, dtype=vals.dtype, device=vals.device).index_add_(0, flat, vals)
        cnt = torch.zeros(size, dtype=vals.dtype, device=vals.device).index_add_(0, flat, torch.ones_like(vals))
        return acc / cnt
    # median: put the k-th value landing on pixel q in slot k of column q, NaN elsewhere
    order = torch.argsort(flat, stable=True)
    sorted_idx = flat[order]
    counts = torch.bincount(sorted_idx, minlength=size)  # (size,)
    first = torch.cumsum(counts, 0) - counts  # position of each pixel's first value in the sorted list
    slot = torch.arange(flat.numel(), device=flat.device) - first[sorted_idx]
    buf = torch.full((int(counts.max()), size), float("nan"), dtype=vals.dtype, device=vals.device)
    buf[slot, sorted_idx] = vals[order]
    return buf.nanmedian(dim=0).values


@register_model(
    "ipi",
    paper="Gao et al., Infrared Patch-Image Model for Small Target Detection in a Single Image, TIP 2013",
    kind="classical",
)
class IPI(ClassicalDetector):
    """IPI detector.

    Args:
        patch: side of the sliding window (default 50, the paper's; frames smaller than it use their
            shorter side).
        step: sliding step (default 10, the paper's).
        lam: λ = lam / √max(m, n) (default 1, the paper's).
        tol: relative residual ‖D − B − T‖_F/‖D‖_F at which IALM stops (default 1e-6).
        max_iter: IALM iteration limit (default 100; a 256×256 frame typically converges in ~30).
        reduce: how overlapping patch values of the target part are combined, ``"median"`` (default,
            the paper's) or ``"mean"``.
        k: adaptive threshold factor (default 12).
    """

    def __init__(
        self,
        in_chans: int = 1,
        num_classes: int = 1,
        patch: int = 50,
        step: int = 10,
        lam: float = 1.0,
        tol: float = 1e-6,
        max_iter: int = 100,
        reduce: str = "median",
        k: float = 12.0,
    ) -> None:
        super().__init__(in_chans, num_classes, k)
        if patch < 2 or step < 1:
            raise ConfigError(f"ipi needs patch >= 2 and step >= 1, got patch={patch}, step={step}")
        if lam <= 0 or tol <= 0 or max_iter < 1:
            raise ConfigError(f"ipi needs lam > 0, tol > 0, max_iter >= 1, got {lam}, {tol}, {max_iter}")
        if reduce not in ("mean", "median"):
            raise ConfigError(f"ipi reduce must be 'mean' or 'median', got {reduce!r}")
        self.patch, self.step, self.lam = int(patch), int(step), float(lam)
        self.tol, self.max_iter = float(tol), int(max_iter)
        self.reduce = reduce

    def _target_image(self, frame: torch.Tensor) -> torch.Tensor:
        """Sparse (target) image of one (H, W) frame, float64."""
        h, w = frame.shape
        p = min(self.patch, h, w)
        step = min(self.step, p)
        lo, hi = frame.min(), frame.max()
        img = (frame - lo) / (hi - lo) if hi > lo else torch.zeros_like(frame)
        tops, lefts = patch_positions(h, p, step), patch_positions(w, p, step)
        # flat pixel index of every (patch, offset): (n, p²)
        dev = frame.device
        offs = (torch.arange(p, device=dev)[:, None] * w + torch.arange(p, device=dev)[None, :]).flatten()  # (p²,)
        tops_t, lefts_t = torch.tensor(tops, device=dev), torch.tensor(lefts, device=dev)
        starts = (tops_t[:, None] * w + lefts_t[None, :]).flatten()  # (n,)
        index = starts[:, None] + offs[None, :]  # (n, p²)
        d = img.flatten()[index].t()  # patch image D: (p², n), one column per window
        lam = self.lam / math.sqrt(max(d.shape))
        _, e, iters = rpca_ialm(d, lam, self.tol, self.max_iter)
        if iters == self.max_iter:
            log.debug("IPI: IALM stopped at the iteration limit (%d) before tol=%g", self.max_iter, self.tol)
        return _overlap_reduce(e.t(), index, h * w, self.reduce).view(h, w)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        frames = [self._target_image(f[0].double()) for f in x]  # one decomposition per frame
        return torch.stack(frames).unsqueeze(1).clamp(min=0).to(x.dtype)
