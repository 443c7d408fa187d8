"""The fault suite (issue 11) runs on the e2e fixtures: the same cluster, fresh namespace and
laptop, and the same rule that a test restarting a testbed component runs last.

Tests marked ``long`` are deselected unless INNERLOOP_LONG=1 (docs/reliability.md).
"""

from __future__ import annotations

import os

import pytest

from tests.e2e.conftest import (  # noqa: F401 (fixtures and hooks, shared)
    LAST_MARKER,
    cluster,
    laptop,
    namespace,
    pytest_configure,
)
from tests.e2e.conftest import pytest_collection_modifyitems as run_testbed_cycles_last

LONG_ENV = "INNERLOOP_LONG"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not os.environ.get(LONG_ENV):
        long = [item for item in items if item.get_closest_marker("long") is not None]
        if long:
            config.hook.pytest_deselected(items=long)
            items[:] = [item for item in items if item not in long]
    run_testbed_cycles_last(items)
