"""``irstd models``: list the registered networks with their parameter and MAC counts and shipped weights.

``--pretrained`` lists the shipped weights (:mod:`irstd.models._pretrained`) with their test metrics.

``--table`` compares every registered learned model, measured at 1×1×256×256, with the published
figures of :mod:`irstd.models._published` (the seed paper's Table 1 and other sources).
"""

from __future__ import annotations

import argparse

from ..models import create_model, get_model_entry, get_pretrained, list_models, list_pretrained, pretrained_tags
from ..models.paper_figures import published_for
from ..core.profiling import count_macs_at, count_params

TABLE_SIZE = 256  # the published figures are all at 1×1×256×256


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list registered models with params and MACs")
    p.add_argument("pattern", nargs="?", default=None, help="shell-style filter, e.g. 'sgem*'")
    p.add_argument("--size", type=int, default=256, help="square input size for the MAC count (default 256)")
    p.add_argument("--no-count", action="store_true", help="names only (skip building the models)")
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
    model = create_model(name)
    return count_params(model), count_macs_at(model, size, size)[0]


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def run_table(pattern: str | None) -> int:
    """Print measured vs published params and MACs for every learned model matching ``pattern``."""
    head = (
        f"{'model':<12} {'params (M)':>10} {'GMACs':>8} | {'pub. params':>11} {'pub. GMACs':>10} "
        f"{'ratio P':>7} {'ratio M':>7}  source — config"
    )
    print(f"measured at 1x1x{TABLE_SIZE}x{TABLE_SIZE} (MACs = FLOPs/2, conv + matmul); ratio = measured / published")
    print(head)
    print("-" * len(head))
    for name in list_models(pattern, kind="learned"):
        params, macs = measure(name, TABLE_SIZE)
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
    names = list_pretrained(pattern)
    print(f"{'weights':<20} {'MB':>5} {'IoU':>6} {'Pd':>6} {'Fa(1e-6)':>9}  sha256[:12]   test data")
    for name in names:
        row = get_pretrained(name)
        m = row.metrics
        print(f"{name:<20} {row.path.stat().st_size / 1e6:>5.1f} {m.get('iou', float('nan')):>6.2f} "
              f"{m.get('pd', float('nan')):>6.2f} {m.get('fa', float('nan')):>9.1f}  {row.sha256[:12]}  {row.test_data}")
    print(f"{len(names)} shipped; load with create_model('model', pretrained='tag') or pass model.tag to "
          "detect/evaluate/export (docs/weights.md)")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.table:
        return run_table(args.pattern)
    if args.pretrained:
        return run_pretrained(args.pattern)
    names = list_models(args.pattern)
    if args.no_count:
        print("\n".join(names))
        return 0
    width = max([14, *map(len, names)])  # the longest name sets the column, so the numbers line up
    print(f"{'model':<{width}} {'params (M)':>10} {'GMACs@' + str(args.size):>12}  {'weights':<14} paper")
    for name in names:
        params, macs = measure(name, args.size)
        tags = ",".join(pretrained_tags(name)) or "-"
        print(f"{name:<{width}} {params / 1e6:>10.3f} {macs / 1e9:>12.2f}  {tags:<14} {get_model_entry(name).paper}")
    return 0
