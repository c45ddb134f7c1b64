"""Experiments: sweeps of models × seeds over one recipe and one test list, and their Table 1."""

from .aggregate import METRICS, Paired, mean_std, paired_difference, summarise
from .report import build_table, save_table, table_markdown
from .runner import RunOutcome, bench_models, evaluate_run, run_sweep
from .spec import CHECKPOINTS, RUNTIME_KEYS, RunSpec, SweepSpec, load_sweep, run_status

__all__ = [
    "CHECKPOINTS", "METRICS", "RUNTIME_KEYS", "Paired", "RunOutcome", "RunSpec", "SweepSpec", "bench_models",
    "build_table", "evaluate_run", "load_sweep", "mean_std", "paired_difference", "run_status", "run_sweep",
    "save_table", "summarise", "table_markdown", "sweep_report",
]


def sweep_report(spec: SweepSpec, outcomes: list[RunOutcome], *, device: str = "auto", out: str | None = None,
                 command: str | None = None, rebench: bool = False) -> tuple[dict, list]:
    """Bench the sweep's models, build Table 1 and write it (``<sweep folder>/table1.*`` or ``out``.*)."""
    models = list(dict.fromkeys(o.model for o in outcomes))
    bench = bench_models(spec, models, device=device, refresh=rebench)
    table = build_table(spec, outcomes, bench, command)
    return table, save_table(table, out or spec.folder / "table1")
