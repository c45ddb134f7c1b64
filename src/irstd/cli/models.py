"""``irstd models``: list the registered networks with their parameter and MAC counts."""

from __future__ import annotations

import argparse

from ..models import create_model, get_model_entry, list_models
from ..profiling import count_macs, count_params


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list registered models with params and MACs")
    p.add_argument("pattern", nargs="?", default=None, help="shell-style filter, e.g. 'sgem*'")
    p.add_argument("--size", type=int, default=256, help="square input size for the MAC count (default 256)")
    p.add_argument("--no-count", action="store_true", help="names only (skip building the models)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    names = list_models(args.pattern)
    if args.no_count:
        print("\n".join(names))
        return 0
    print(f"{'model':<14} {'params (M)':>10} {'GMACs@' + str(args.size):>12}  paper")
    for name in names:
        model = create_model(name)
        macs = count_macs(model, (1, model.in_chans, args.size, args.size))
        print(f"{name:<14} {count_params(model) / 1e6:>10.3f} {macs / 1e9:>12.2f}  {get_model_entry(name).paper}")
    return 0
