"""Statistics over seeds: mean ± sample standard deviation, and paired differences against a reference.

Figures are in the units of the table: percentages for IoU, nIoU, F1, Pd and target F1, ×10⁻⁶ for Fa.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from scipy import stats as _stats

from ..metrics import METRIC_COLUMNS

__all__ = ["METRICS", "mean_std", "Paired", "paired_difference", "summarise", "steadiest"]

#: (key in SegResult.as_dict(), column title, scale to the table's unit) of the sweep table's metrics, from
#: :data:`irstd.metrics.METRIC_COLUMNS`; higher is better except Fa
METRICS = tuple((k, METRIC_COLUMNS[k].title, METRIC_COLUMNS[k].scale) for k in ("iou", "niou", "f1", "pd", "fa", "target_f1"))


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """(mean, sample standard deviation with n − 1, n) of the finite values; std is NaN below two values."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(xs)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(xs) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else math.nan
    return mean, std, n


@dataclass(frozen=True)
class Paired:
    """``model − reference`` on one metric over the seeds both have."""

    model: str
    reference: str
    metric: str
    seeds: tuple[int, ...]
    differences: tuple[float, ...]
    mean: float
    std: float
    low: float  # 95 % t-interval of the mean difference (NaN with one seed)
    high: float

    @property
    def within_noise(self) -> bool | None:
        """True when the interval holds 0; None when it cannot be told (fewer than two seeds)."""
        if len(self.seeds) < 2 or not math.isfinite(self.low):
            return None
        return self.low <= 0.0 <= self.high

    def sentence(self) -> str:
        """The plain reading of the comparison."""
        n = len(self.seeds)
        head = f"{self.model} − {self.reference}, {self.metric}: {self.mean:+.2f}"
        if n < 2:
            return f"{head} on {n} seed: no estimate of the noise, nothing can be concluded."
        where = f"(sd {self.std:.2f} over {n} paired seeds; 95 % interval {self.low:+.2f} to {self.high:+.2f})"
        if self.within_noise:
            return f"{head} {where}: within noise — the seeds do not show a difference."
        better = (self.mean > 0) != (self.metric == "Fa")
        return f"{head} {where}: {self.model} is {'better' if better else 'worse'} beyond the seed-to-seed noise."

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "reference": self.reference, "metric": self.metric, "seeds": list(self.seeds),
                "differences": list(self.differences), "mean": self.mean, "std": self.std,
                "ci95": [self.low, self.high], "within_noise": self.within_noise, "sentence": self.sentence()}


def paired_difference(model: str, reference: str, metric: str, values: Mapping[int, float],
                      ref_values: Mapping[int, float]) -> Paired:
    """Seed-by-seed ``values[s] − ref_values[s]`` over the seeds both have, with its mean, sd and 95 % t-interval."""
    seeds = tuple(sorted(s for s in values if s in ref_values
                         and math.isfinite(values[s]) and math.isfinite(ref_values[s])))
    diffs = tuple(values[s] - ref_values[s] for s in seeds)
    mean, std, n = mean_std(diffs)
    if n >= 2:
        half = float(_stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
        low, high = mean - half, mean + half
    else:
        low = high = math.nan
    return Paired(model, reference, metric, seeds, diffs, mean, std, low, high)


def summarise(per_seed: Mapping[int, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """{metric: {"mean", "std", "n"}} in the table's units from {seed: SegResult dict}."""
    out = {}
    for key, _, scale in METRICS:
        mean, std, n = mean_std([scale * m[key] for m in per_seed.values() if m.get(key) is not None])
        out[key] = {"mean": mean, "std": std, "n": n}
    return out


def steadiest(readings: Mapping[str, Sequence[tuple[float, float]]]) -> str | None:
    """The default checkpoint: the steadiest reading among those not worse beyond noise.

    ``readings``: checkpoint kind -> one (mean, sd) of test IoU over seeds per model (models with two or
    more seeds of that kind). A kind whose mean, averaged over models, falls below the highest such mean by
    more than that top kind's average sd is out (steady at a worse level is no default); of the others the
    lowest average sd wins.
    """
    scores = {k: (sum(m for m, _ in v) / len(v), sum(sd for _, sd in v) / len(v))
              for k, v in readings.items() if v and all(math.isfinite(m) and math.isfinite(sd) for m, sd in v)}
    if not scores:
        return None
    top = max(scores, key=lambda k: scores[k][0])
    floor = scores[top][0] - scores[top][1]
    candidates = [k for k, (mean, _) in scores.items() if mean >= floor]
    return min(candidates, key=lambda k: scores[k][1])
