"""Entry point for ``python -m tools.testbed``."""

import sys

from tools.testbed.cli import main

sys.exit(main())
