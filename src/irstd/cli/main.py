"""Entry point of the ``irstd`` command.

Every module ``irstd.cli.<name>`` that defines ``register(subparsers)`` adds its sub-command;
``register`` sets ``func`` on its parser (``parser.set_defaults(func=run)``, or one per action)
where ``func(args) -> int | None``; commands that run networks on large tensors also call
``_common.retains_memory(parser)``.
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

from ..core.errors import IRSTDError
from ..core.memory import retain_freed_memory
from ..core.version import __version__


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
    if getattr(args, "retain_memory", False) and os.environ.get("IRSTD_RETAIN_MEMORY", "1") != "0":
        retain_freed_memory()  # an inference process owns its memory: reuse large tensors' pages (docs/speed.md)
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
