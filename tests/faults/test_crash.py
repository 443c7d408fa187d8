"""innerloop itself dies between two steps of starting or leaving an intercept (the runner's
test-only hook INNERLOOP_TEST_CRASH_BEFORE makes it `os._exit(1)` just before the named effect of
the intercept machine): the cluster serves all along, and `innerloop uninstall` afterwards gives
back the workload and Service exactly as they were."""

from __future__ import annotations

import signal
import sys

import pytest

from tests.helpers.snapshot import assert_same, namespace_snapshot
from tests.helpers.traffic import start_retrying_load_pod, url
from tools.cluster import Cluster
from tools.laptop import Laptop

pytestmark = pytest.mark.e2e
CRASH_BEFORE = "INNERLOOP_TEST_CRASH_BEFORE"

STARTING = ["Resolve", "InstallAgent", "WaitRollout", "OpenTunnels", "RouteTraffic",
            "TakeOverService"]
LEAVING = ["ReleaseTraffic", "CloseTunnels"]
DEFAULT = {"TakeOverService"}
"""The one in the default suite: the last step of starting, with everything to undo (the others
are `long`: each costs a rollout and back, ~18 s)."""


@pytest.mark.parametrize("effect", [
    pytest.param(e, marks=() if e in DEFAULT else pytest.mark.long) for e in STARTING + LEAVING
])
def test_crash_before_each_effect_then_uninstall_restores_exactly(
    cluster: Cluster, namespace: str, laptop: Laptop, effect: str
) -> None:
    cluster.deploy_echo(namespace)
    cluster.start_client(namespace)
    before = namespace_snapshot(cluster, namespace)
    _, port = laptop.start_app_on_a_free_port()
    start_retrying_load_pod(cluster, namespace, "steady", url(cluster, namespace),
                            duration=300, rate=20)
    cluster.wait_load_pod_sending(namespace, "steady")

    args = ("intercept", "echo", "-n", namespace, "--port", f"{port}:80")
    proc, lines = laptop.popen([sys.executable, "-m", "innerloop", *args],
                               **{CRASH_BEFORE: effect})
    if effect in LEAVING:
        lines.wait_for("innerloop: intercepting", 120)
        proc.send_signal(signal.SIGINT)
    assert proc.wait(120) == 1, lines.text()

    result = laptop.run("uninstall", "echo", "-n", namespace, timeout=240)
    assert result.returncode == 0, result.stdout
    after = namespace_snapshot(cluster, namespace)
    logs = cluster.kubectl("-n", namespace, "logs", "steady").stdout
    cluster.kubectl("-n", namespace, "delete", "pod", "steady", "--wait=false")
    failed = [line for line in logs.splitlines() if '"error"' in line or '"status": 5' in line]
    retried = sum('"retries"' in line for line in logs.splitlines())
    print(f"\ncrash before {effect}: {len(failed)} failed requests, {retried} retried")
    assert_same(before, after)
    assert failed == [], failed[:5]
