"""Entry point of the ``irstd`` command.

Commands are listed in :data:`COMMANDS` (name → module of this package, one-line help); a command's
module is imported, and its options built, only when that command is named, so ``irstd --help`` loads
no torch. The contract of a command module ``irstd.cli.<module>``:

* ``add_arguments(parser)`` adds the command's options to ``parser`` (an :class:`OneLineErrorParser`
  named ``irstd <name>``), may set ``parser.description``, and sets ``func`` on it
  (``parser.set_defaults(func=run)``, or one per action of a sub-parser), where ``func(args) -> int | None``;
  commands that run networks on large tensors also call ``_common.retains_memory(parser)``;
* its top level imports the standard library, ``._common`` and what the options need (choices,
  defaults), from modules without a torch import; the library that runs the command is imported inside
  ``run``, so ``irstd --help``, ``irstd <name> --help`` and other commands do not pay for it.

User errors (:class:`irstd.errors.IRSTDError`, missing files) end with one line on stderr and
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import re
import sys
from typing import Any, Sequence

from ..core.errors import IRSTDError
from ..core.memory import retain_freed_memory
from ..core.version import __version__

#: every command: name → (module of irstd.cli that defines it, one-line help of ``irstd --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "bench": ("bench", "time registered models (fp32 and fast mode) and write JSON + Markdown"),
    "data": ("data", "inspect a dataset folder or write the synthetic dataset"),
    "demo": ("demo", "a trained detector on synthetic scenes: evaluate, detect, overlay (--train: train first)"),
    "detect": ("detect", "detect targets in images, folders or globs"),
    "evaluate": ("evaluate", "evaluate a checkpoint or classical detector on a dataset"),
    "evaluate-track": ("evaluate_track", "score a track run against point labels: raw vs confirmed, MOTA, IDF1"),
    "export": ("export", "export a checkpoint to ONNX and check it with onnxruntime"),
    "models": ("models", "list registered models with params and MACs"),
    "operating-point": ("operating_point", "fold the validation-chosen threshold into a checkpoint"),
    "serve": ("serve", "serve a model over HTTP, with a page for people at /"),
    "sweep": ("sweep", "train/evaluate models × seeds and report mean ± std (Table 1)"),
    "track": ("track", "detect and track targets in a video or frame sequence; confirmed targets, MOT CSV"),
    "train": ("train", "train a model"),
}


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse prints usage + error on two lines; users get one line naming the command and --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {suggest_choice(message)} (see {self.prog} --help)\n")


def suggest_choice(message: str) -> str:
    """argparse's "invalid choice: 'x' (choose from ...)" with the closest choices first ("did you mean")."""
    m = re.search(r"argument (\S+): invalid choice: '([^']*)' \(choose from (.*)\)$", message)
    if not m:
        return message
    option, given = m.group(1), m.group(2)
    choices = re.findall(r"'([^']*)'", m.group(3))
    close = difflib.get_close_matches(given, choices, n=3, cutoff=0.6)
    what = "command" if option == "COMMAND" else f"value of {option}"
    if close:
        return f"unknown {what} {given!r}: did you mean {' or '.join(repr(c) for c in close)}?"
    return f"unknown {what} {given!r}: choose from {', '.join(choices)}"


class CommandParser(OneLineErrorParser):
    """The parser of one command: empty until it parses or prints help, then filled by its module's
    ``add_arguments`` (imported at that moment)."""

    def __init__(self, *args: Any, module: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._module = module

    def load(self) -> CommandParser:
        """Import the command's module and add its options (once)."""
        if self._module is not None:
            module, self._module = self._module, None
            importlib.import_module(f"{__package__}.{module}").add_arguments(self)
        return self

    def add_subparsers(self, **kwargs: Any) -> argparse._SubParsersAction:
        kwargs.setdefault("parser_class", OneLineErrorParser)  # a command's actions are plain parsers
        return super().add_subparsers(**kwargs)

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        return super(CommandParser, self.load()).parse_known_args(args, namespace)

    def format_help(self) -> str:
        return super(CommandParser, self.load()).format_help()

    def format_usage(self) -> str:
        return super(CommandParser, self.load()).format_usage()


def build_parser() -> argparse.ArgumentParser:
    """The full parser, one sub-command per entry of :data:`COMMANDS` (each filled when used)."""
    parser = OneLineErrorParser(prog="irstd", description="Infrared small target detection toolkit.")
    parser.add_argument("--version", action="version", version=f"irstd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=CommandParser)
    for name, (module, text) in COMMANDS.items():
        sub.add_parser(name, help=text, module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status. Ctrl-C at any moment, the first seconds included
    (a command's options and torch still loading), ends with one line and status 130."""
    command = "irstd"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = f"irstd {args.command}"
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
        )
        if not args.verbose:  # torch sets this once imported; a Ctrl-C during its import would leave its
            logging.getLogger("torch").setLevel(logging.WARNING)  # at-exit statistics at INFO
        if getattr(args, "retain_memory", False) and os.environ.get("IRSTD_RETAIN_MEMORY", "1") != "0":
            retain_freed_memory()  # an inference process owns its memory: reuse large tensors' pages (docs/speed.md)
        return int(args.func(args) or 0)
    except (IRSTDError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
