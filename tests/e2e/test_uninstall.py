"""`innerloop uninstall` on the testbed puts the namespace back as it was: every object innerloop
created is gone (the agent ConfigMap included, once no intercepted workload mounts it) and every
spec, data and annotation equals a snapshot taken before the first intercept."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_k8s_gateway import restricted_kubeconfig
from tests.helpers.snapshot import namespace_snapshot
from tools.cluster import Cluster
from tools.laptop import Laptop
from tools.net import free_port

pytestmark = pytest.mark.e2e

USAGE_ROLE = [
    {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "update"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "delete"]},
    {"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["get", "create"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "replicasets"],
     "verbs": ["get", "list", "watch", "update"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list"]},
]
"""The Role docs/usage.md gives: it may not list or delete ConfigMaps."""


def agent_config_maps(cluster: Cluster, namespace: str) -> set[str]:
    listing = cluster.kubectl_json("-n", namespace, "get", "configmaps")
    return {o["metadata"]["name"] for o in listing["items"]
            if o["metadata"]["name"].startswith("innerloop-agent-")}


def mounted_config_maps(cluster: Cluster, namespace: str, workload: str) -> set[str]:
    spec = cluster.kubectl_json("-n", namespace, "get", workload)["spec"]["template"]["spec"]
    return {v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v}


def intercept_and_leave(laptop: Laptop, namespace: str, service: str) -> None:
    """`status` and `list` show the intercept, `leave` ends it. Nothing listens on the local
    port: no traffic is sent."""
    port = free_port()
    proc, _lines, _ = laptop.intercept(namespace, service, f"{port}:http")
    assert f"{service}.{namespace}:80/http → 127.0.0.1:{port}" in laptop.run("status").stdout
    listed = laptop.run("list", "-n", namespace).stdout
    [row] = [ln for ln in listed.splitlines() if ln.startswith(service + " ")]
    assert row.split()[3:] == ["yes", "80/http"], row
    left = laptop.run("leave", service, "-n", namespace)
    assert left.returncode == 0, left.stdout
    assert proc.wait(30) == 0
    assert "no intercepts" in laptop.run("status").stdout


def containers(cluster: Cluster, namespace: str, app: str) -> set[str]:
    """The containers of the app's running pods (once uninstall has rolled them)."""
    return {c["name"] for p in cluster.pods(namespace, app)
            for c in cluster.kubectl_json("-n", namespace, "get", "pod", p)["spec"]["containers"]}


def test_uninstall_leaves_the_namespace_as_it_was(
    cluster: Cluster, namespace: str, laptop: Laptop
) -> None:
    cluster.deploy_echo(namespace, replicas=1)
    cluster.deploy_echo(namespace, replicas=1, statefulset=True)
    before = namespace_snapshot(cluster, namespace)

    # Leaving keeps both agents (sticky); both mount the agent ConfigMap of the build that
    # installed them (one, unless the agent's code changed in between).
    intercept_and_leave(laptop, namespace, "echo")
    intercept_and_leave(laptop, namespace, "echo-sts")
    created = agent_config_maps(cluster, namespace)
    kept = mounted_config_maps(cluster, namespace, "statefulset/echo-sts") & created
    assert kept, "the StatefulSet's agent mounts an agent ConfigMap"

    result = laptop.run("uninstall", "echo", "-n", namespace, timeout=240)
    assert result.returncode == 0, result.stdout
    assert agent_config_maps(cluster, namespace) == kept, "the StatefulSet's agent still needs it"
    assert containers(cluster, namespace, "echo") == {"echo"}

    result = laptop.run("uninstall", "echo-sts", "-n", namespace, timeout=240)
    assert result.returncode == 0, result.stdout
    after = namespace_snapshot(cluster, namespace)
    assert sorted(after) == sorted(before), "no object innerloop created remains"
    for key, was in before.items():
        assert after[key] == was, key
    assert all(f"deleted configmap/{name}" in result.stdout for name in kept), result.stdout
    assert containers(cluster, namespace, "echo-sts") == {"echo"}
    assert len(cluster.pods(namespace, "echo-sts")) == 1


def test_uninstall_without_rights_on_configmaps_still_restores_the_specs(
    cluster: Cluster, namespace: str, laptop: Laptop, tmp_path: Path
) -> None:
    cluster.deploy_echo(namespace, replicas=1)
    user = restricted_kubeconfig(cluster, namespace, tmp_path, USAGE_ROLE)
    before = namespace_snapshot(cluster, namespace)
    intercept_and_leave(laptop, namespace, "echo")
    created = agent_config_maps(cluster, namespace)

    result = laptop.run("uninstall", "echo", "-n", namespace, "--kubeconfig", str(user),
                        timeout=240)
    assert result.returncode == 0, result.stdout
    assert "left the agent ConfigMap behind: forbidden: " in result.stdout, result.stdout
    after = namespace_snapshot(cluster, namespace)
    assert set(after) - set(before) == {("ConfigMap", name) for name in created}
    for key, was in before.items():
        assert after[key] == was, key
