"""Shared pytest setup. Only makes the repo root importable (``tools.testbed``, ``tools.cluster``):
nothing here may slow the unit tests."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
