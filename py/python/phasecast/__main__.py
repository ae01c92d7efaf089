"""``python -m phasecast``: see :mod:`phasecast.cli`."""

import sys

from .cli import main

sys.exit(main())
