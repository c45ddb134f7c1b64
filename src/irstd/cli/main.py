"""Entry point of the ``irstd`` command.

Every module ``irstd.cli.<name>`` that defines ``register(subparsers)`` adds its sub-command;
``register`` must call ``parser.set_defaults(func=run)`` where ``run(args) -> int | None``.
User errors (:class:`irstd.errors.IRSTDError`, missing files) end with one line on stderr and
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

from .. import __version__
from ..engine.runtime import retain_freed_memory
from ..errors import IRSTDError


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse prints usage + error on two lines; users get one line naming the command and --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with one sub-command per module of this package."""
    parser = OneLineErrorParser(prog="irstd", description="Infrared small target detection toolkit.")
    parser.add_argument("--version", action="version", version=f"irstd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=OneLineErrorParser)
    from . import __path__ as cli_path

    for info in sorted(pkgutil.iter_modules(cli_path), key=lambda i: i.name):
        if info.name in ("main",) or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__package__}.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if os.environ.get("IRSTD_RETAIN_MEMORY", "1") != "0":
        retain_freed_memory()  # this process owns its memory: reuse large tensors' pages (docs/speed.md)
    try:
        return int(args.func(args) or 0)
    except (IRSTDError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        print(f"irstd {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
