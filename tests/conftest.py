"""Shared pytest setup. Makes the repo root importable (``tools.testbed``, ``tools.cluster``),
gives SIGINT back its default, and deselects tests marked ``long`` unless INNERLOOP_LONG=1
(docs/reliability.md): nothing here may slow the unit tests."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

# A suite started in the background of a non-interactive shell (as CI runs are) inherits SIGINT
# ignored, and every process it starts would too: the local apps the tests stop with SIGINT, as
# a user's Ctrl-C does, would ignore it, and each stop would wait out its timeout (30 s per e2e
# test). A handler, unlike SIG_IGN, is reset to the default across exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

LONG_ENV = "INNERLOOP_LONG"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not os.environ.get(LONG_ENV):
        long = [item for item in items if item.get_closest_marker("long") is not None]
        if long:
            config.hook.pytest_deselected(items=long)
            items[:] = [item for item in items if item not in long]
