"""Issue 11's snags found when tried as a new user would, on the testbed: `uninstall` of a
Service someone else holds, a failed start's rollback, `list` of a namespace that does not
exist."""

from __future__ import annotations

import pytest

from tests.e2e.test_cli import one_line_error
from tools.cluster import Cluster
from tools.laptop import Laptop
from tools.testbed.config import BUSYBOX_IMAGE

pytestmark = pytest.mark.e2e
LOCAL_PORT = 18090


def test_uninstall_refuses_while_another_machine_holds_it_and_force_ends_the_holder(
    cluster: Cluster, namespace: str, laptop: Laptop
) -> None:
    cluster.deploy_echo(namespace)
    laptop.start_app(LOCAL_PORT)
    holder, lines, _ = laptop.intercept(namespace, "echo", f"{LOCAL_PORT}:http")
    service_before = cluster.kubectl_json("-n", namespace, "get", "service", "echo")["spec"]

    other = Laptop(cluster)  # another machine: its own registry, so only the agent knows
    try:
        message = one_line_error(other.run("uninstall", "echo", "-n", namespace))
        assert message.startswith(f"echo.{namespace} is intercepted by "), message
        assert f":{holder.pid}" in message and message.endswith("pass --force"), message
        assert cluster.kubectl_json("-n", namespace, "get", "service", "echo")["spec"] == \
            service_before, "a refused uninstall changes nothing"
        assert holder.poll() is None

        forced = other.run("uninstall", "echo", "-n", namespace, "--force", timeout=240)
        assert forced.returncode == 0, forced.stdout
    finally:
        other.close()
    assert holder.wait(60) == 1, lines.text()
    last = [ln for ln in lines.text().splitlines() if ln.strip()][-1]
    assert last == ("innerloop: the innerloop agent was removed from deployment/echo "
                    "(`innerloop uninstall` from elsewhere); this intercept has ended"), last


def test_a_failed_start_ends_with_pods_and_replica_sets_as_they_were(
    cluster: Cluster, namespace: str, laptop: Laptop
) -> None:
    cluster.deploy_echo(namespace, replicas=1)

    def state() -> tuple[list[str], list[str]]:
        pods = cluster.kubectl_json("-n", namespace, "get", "pods")["items"]
        sets = cluster.kubectl_json("-n", namespace, "get", "replicasets")["items"]
        return (sorted(p["metadata"]["name"] for p in pods),
                sorted(r["metadata"]["name"] for r in sets))

    before = state()
    result = laptop.run("intercept", "echo", "-n", namespace, "--port", str(LOCAL_PORT),
                        "--agent-image", BUSYBOX_IMAGE, timeout=300)
    message = one_line_error(result, after_progress=True)
    assert "python3" in message, message
    # At once, not eventually: the command returned only once the cluster was as it was.
    assert state() == before, result.stdout


def test_list_of_a_namespace_that_does_not_exist_says_so(laptop: Laptop) -> None:
    message = one_line_error(laptop.run("list", "-n", "no-such-namespace-x"))
    assert message.startswith("namespace 'no-such-namespace-x' not found"), message
