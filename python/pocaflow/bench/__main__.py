"""``python -m pocaflow.bench``: see :mod:`pocaflow.bench`."""

from __future__ import annotations

import sys

from ._cli import main

sys.exit(main())
