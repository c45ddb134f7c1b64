"""``python -m irstd`` (and ``torchrun ... -m irstd``): the ``irstd`` command."""

import sys

try:
    from irstd.cli.main import main
except KeyboardInterrupt:  # Ctrl-C while the command's first modules load: one line, no traceback
    print("irstd: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
