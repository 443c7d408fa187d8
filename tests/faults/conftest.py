"""The fault suite (issue 11) runs on the e2e fixtures: the same cluster, fresh namespace and
laptop, and the same rule that a test restarting a testbed component runs last.

Tests marked ``long`` are deselected unless INNERLOOP_LONG=1 (tests/conftest.py,
docs/reliability.md).
"""

from __future__ import annotations

from tests.e2e.conftest import (  # noqa: F401 (fixtures and hooks, shared)
    LAST_MARKER,
    cluster,
    laptop,
    namespace,
    pytest_collection_modifyitems,
    pytest_configure,
)
