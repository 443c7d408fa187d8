"""e2e fixtures: a real cluster for the session, a fresh namespace per test.

The cluster is the local testbed (`python -m tools.testbed up`), reused when already running and
stopped at the end only if this session started it; or any real cluster named by
INNERLOOP_TEST_KUBECONFIG. Set INNERLOOP_KEEP_TESTBED=1 to keep a testbed this session started.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.cluster import Cluster, run_testbed
from tools.laptop import Laptop
from tools.testbed import pids
from tools.testbed.config import BIN_DIR, KUBECONFIG

LAST_MARKER = "testbed_cycle"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{LAST_MARKER}: stops and restarts the testbed; runs after every other test"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that take the testbed down run last, whatever their file names."""
    items.sort(key=lambda item: item.get_closest_marker(LAST_MARKER) is not None)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    foreign = os.environ.get("INNERLOOP_TEST_KUBECONFIG")
    if foreign:
        yield Cluster(Path(foreign), started=False, testbed=False)
        return
    if os.geteuid() != 0:
        pytest.skip("the testbed needs root (or set INNERLOOP_TEST_KUBECONFIG)")
    # Someone else's testbed (scripts/test, another session) is never ours to stop, even if a
    # health probe is slow right now: decide by whether its daemons run at all.
    started = not any(record.alive() for record in pids.records())
    run_testbed("up")  # a no-op when healthy
    yield Cluster(KUBECONFIG, started=started, testbed=True, kubectl_bin=str(BIN_DIR / "kubectl"))
    if started and not os.environ.get("INNERLOOP_KEEP_TESTBED"):
        run_testbed("down")


@contextlib.contextmanager
def fresh_namespace(cluster: Cluster, name_from: str) -> Iterator[str]:
    """A new namespace named after a test or module, deleted afterwards (without waiting)."""
    stem = re.sub(r"[^a-z0-9]+", "-", name_from.lower().removeprefix("test_"))[:40].strip("-")
    name = f"e2e-{stem}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("wait", "serviceaccount/default", "-n", name, "--for=create", "--timeout=30s")
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of its own for one test."""
    with fresh_namespace(cluster, request.node.name) as name:
        yield name


@pytest.fixture(scope="module")
def module_namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """One namespace for the tests of a module that only read what is deployed in it (and add
    objects no other test looks at): e.g. one echo Deployment for several read-only checks. A
    test that changes what others read takes `namespace`."""
    with fresh_namespace(cluster, request.module.__name__.rsplit(".", 1)[-1]) as name:
        yield name


@pytest.fixture
def laptop(cluster: Cluster) -> Iterator[Laptop]:
    """The developer's machine: processes in the netns that reaches only the API server."""
    lap = Laptop(cluster)
    yield lap
    lap.close()
