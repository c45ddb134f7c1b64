"""``python -m irstd`` (and ``torchrun ... -m irstd``): the ``irstd`` command."""

import sys

from irstd.cli.main import main

sys.exit(main())
