"""``python -m irstd`` (and ``torchrun ... -m irstd``) and the ``irstd`` console script: the ``irstd`` command.

The console script (``[project.scripts]`` in pyproject.toml) names :func:`entry`, not
``irstd.cli.main:main``: a generated script imports its target module before calling anything, so a
Ctrl-C while ``irstd.cli.main`` and its imports load would end in a ``KeyboardInterrupt`` traceback.
Here the import happens inside the handler; what is left outside it is the interpreter's start-up and
``import irstd`` (the package's ``__init__``: no torch, a few standard modules).
"""

import sys


def entry() -> int:
    """The ``irstd`` command: Ctrl-C at any moment of its start ends with one line and status 130."""
    try:
        from irstd.cli.main import main
    except KeyboardInterrupt:  # Ctrl-C while the command's first modules load: one line, no traceback
        print("irstd: interrupted", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(entry())
