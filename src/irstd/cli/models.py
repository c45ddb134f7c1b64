"""``irstd models``: list the registered networks with their parameter and MAC counts and shipped weights.

The counts at 1×1×256×256 come from ``model_counts.json`` beside this module (measured once by
``scripts/model_counts.py``; a test checks it against live counts), so the listing prints at once;
``--measure`` (or another ``--size``) counts live, building every model.

``--pretrained`` lists the shipped weights (:mod:`irstd.models.pretrained`) with their test metrics.

``--table`` compares every registered learned model, measured at 1×1×256×256, with the published
figures of :mod:`irstd.models.paper_figures` (the seed paper's Table 1 and other sources).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ._common import positive_int

TABLE_SIZE = 256  # the published figures are all at 1×1×256×256
#: (params, MACs at 1×C×TABLE_SIZE×TABLE_SIZE) of every registered model, by name
COUNTS_FILE = Path(__file__).with_name("model_counts.json")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pattern", nargs="?", default=None, help="shell-style filter, e.g. 'sgem*'")
    p.add_argument("--size", type=positive_int, default=TABLE_SIZE,
                   help=f"square input size for the MAC count (default {TABLE_SIZE}; other sizes are counted live)")
    p.add_argument("--no-count", action="store_true", help="names only (skip building the models)")
    p.add_argument("--measure", action="store_true",
                   help=f"count params and MACs now, building every model (default: the figures measured at {TABLE_SIZE})")
    p.add_argument(
        "--table",
        action="store_true",
        help="learned models at 256×256 side by side with published params/MACs and the ratio measured/published",
    )
    p.add_argument("--pretrained", action="store_true",
                   help="shipped weights only: name, file, SHA-256, test data and metrics (load them by name)")
    p.set_defaults(func=run)


def measure(name: str, size: int) -> tuple[int, int]:
    """(parameters, MACs at 1×C×size×size) of ``create_model(name)`` (:func:`irstd.core.profiling.count_macs_at`)."""
    from ..core.profiling import count_macs_at, count_params
    from ..models import create_model

    model = create_model(name)
    return count_params(model), count_macs_at(model, size, size)[0]


def measure_all(names: list[str]) -> dict[str, tuple[int, int]]:
    """Live (params, MACs at TABLE_SIZE) of each model: what :data:`COUNTS_FILE` stores."""
    return {name: measure(name, TABLE_SIZE) for name in names}


def stored_counts() -> dict[str, tuple[int, int]]:
    """The figures of :data:`COUNTS_FILE` by model name (empty when the file is missing)."""
    if not COUNTS_FILE.is_file():
        return {}
    rows = json.loads(COUNTS_FILE.read_text())["models"]
    return {name: (row["params"], row["macs"]) for name, row in rows.items()}


def write_counts(counts: dict[str, tuple[int, int]], path: Path = COUNTS_FILE) -> None:
    """Write ``counts`` (from :func:`measure_all`) as the stored table."""
    rows = ",\n".join(f'  {json.dumps(name)}: {json.dumps({"params": p, "macs": m})}' for name, (p, m) in sorted(counts.items()))
    head = json.dumps({"input": f"1xCx{TABLE_SIZE}x{TABLE_SIZE}", "written_by": "scripts/model_counts.py"})[:-1]
    path.write_text(f'{head}, "models": {{\n{rows}\n}}}}\n')  # one model a line: a change reads as one line


class _Counts:
    """Params and MACs of a model: stored at TABLE_SIZE, else (``live``, another size, a model missing
    from the table) measured now."""

    def __init__(self, size: int, live: bool) -> None:
        self.size = size
        self.stored = {} if live or size != TABLE_SIZE else stored_counts()

    def __call__(self, name: str) -> tuple[int, int]:
        return self.stored[name] if name in self.stored else measure(name, self.size)

def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def run_table(pattern: str | None, live: bool = False) -> int:
    """Print measured vs published params and MACs for every learned model matching ``pattern``."""
    from ..models import list_models
    from ..models.paper_figures import published_for

    counts = _Counts(TABLE_SIZE, live)
    head = (
        f"{'model':<12} {'params (M)':>10} {'GMACs':>8} | {'pub. params':>11} {'pub. GMACs':>10} "
        f"{'ratio P':>7} {'ratio M':>7}  source — config"
    )
    print(f"measured at 1x1x{TABLE_SIZE}x{TABLE_SIZE} (MACs = FLOPs/2, conv + matmul); ratio = measured / published")
    print(head)
    print("-" * len(head))
    for name in list_models(pattern, kind="learned"):
        params, macs = counts(name)
        p_m, g = params / 1e6, macs / 1e9
        left = f"{name:<12} {p_m:>10.3f} {g:>8.2f}"
        entries = published_for(name)
        if not entries:
            print(f"{left} | {'-':>11} {'-':>10} {'-':>7} {'-':>7}  no published figure")
            continue
        for i, pub in enumerate(entries):
            lead = left if i == 0 else " " * len(left)
            same = pub.matches_default
            rp = p_m / pub.params_m if same and pub.params_m else None
            rm = g / pub.gmacs if same and pub.gmacs else None
            config = pub.config if same else f"other config: {pub.config}"
            details = "; ".join(t for t in (config, pub.note) if t)
            print(
                f"{lead} | {_fmt(pub.params_m, 3):>11} {_fmt(pub.gmacs, 2):>10} {_fmt(rp, 2):>7} {_fmt(rm, 2):>7}  "
                f"{pub.source}" + (f" — {details}" if details else "")
            )
    return 0


def run_pretrained(pattern: str | None) -> int:
    """Print the shipped weights: name, storage, test metrics and what they were measured on."""
    from ..models import get_pretrained, list_pretrained
    from ..models.pretrained import metric_text

    names = list_pretrained(pattern)
    print(f"{'weights':<24} {'MB':>5} {'IoU':>6} {'Pd':>6} {'Fa(1e-6)':>9}  sha256[:12]   test data")
    for name in names:
        row = get_pretrained(name)
        iou, pd, fa = (metric_text(row.metrics.get(k)) for k in ("iou", "pd", "fa"))
        print(f"{name:<24} {row.path.stat().st_size / 1e6:>5.1f} {iou:>6} {pd:>6} {fa:>9}  {row.sha256[:12]}  {row.test_data}")
    print(f"{len(names)} shipped; load with create_model('model', pretrained='tag') or pass model.tag to "
          "detect/evaluate/export (docs/weights.md)")
    _print_verifiers(pattern)
    return 0


def _print_verifiers(pattern: str | None) -> None:
    """The shipped candidate verifiers (not detectors: they follow one with ``--verify=NAME``)."""
    import fnmatch

    from ..verify import DEFAULT_VERIFIER, shipped_verifiers
    from ..verify.verifier import VERIFIER_TABLE

    rows = {k: v for k, v in sorted(shipped_verifiers().items()) if pattern is None or fnmatch.fnmatch(k, pattern)}
    if not rows:
        return
    print(f"\n{'verifier':<24} {'MB':>5} {'threshold':>9}  sha256[:12]")
    for name, row in rows.items():
        size = (VERIFIER_TABLE.parent / row["file"]).stat().st_size / 1e6
        note = "  (default of --verify)" if name == DEFAULT_VERIFIER else ""
        print(f"{name:<24} {size:>5.1f} {row['threshold']:>9.3f}  {row['sha256'][:12]}{note}")
    print(f"{len(rows)} shipped; pass --verify=NAME to detect/evaluate/track/serve (docs/verify.md)")


def run(args: argparse.Namespace) -> int:
    from ..models import get_model_entry, list_models, pretrained_tags

    if args.table:
        return run_table(args.pattern, live=args.measure)
    if args.pretrained:
        return run_pretrained(args.pattern)
    names = list_models(args.pattern)
    if args.no_count:
        print("\n".join(names))
        return 0
    width = max([14, *map(len, names)])  # the longest name sets the column, so the numbers line up
    print(f"{'model':<{width}} {'params (M)':>10} {'GMACs@' + str(args.size):>12}  {'weights':<14} paper")
    counts = _Counts(args.size, args.measure)
    for name in names:
        params, macs = counts(name)
        tags = ",".join(pretrained_tags(name)) or "-"
        print(f"{name:<{width}} {params / 1e6:>10.3f} {macs / 1e9:>12.2f}  {tags:<14} {get_model_entry(name).paper}")
    return 0
