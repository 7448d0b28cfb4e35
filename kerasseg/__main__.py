"""``python -m kerasseg``: the ``kerasseg`` command."""

import sys

from kerasseg.cli import main

sys.exit(main())
