"""A warm start (the agent already in place) opens its tunnels while the permissions are
checked: a user who may not intercept still gets one line and changes nothing, and a cold
start routes once kube-proxy does (the probe through the ClusterIP, not a fixed pause)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.e2e.test_cli import one_line_error
from tests.e2e.test_k8s_gateway import VIEWER_RULES, restricted_kubeconfig
from tests.helpers.snapshot import WRITABLE, namespace_snapshot
from tools.cluster import Cluster
from tools.laptop import Laptop

LOCAL_PORT = 18086


def test_warm_start_refused_by_rbac_is_one_line_and_a_cold_start_probes_kube_proxy(
    cluster: Cluster, namespace: str, laptop: Laptop, tmp_path: Path
) -> None:
    cluster.deploy_echo(namespace, replicas=1)
    laptop.start_app(LOCAL_PORT)
    proc, lines = laptop.innerloop("-v", "intercept", "echo", "-n", namespace, "--port",
                                   f"{LOCAL_PORT}:80")
    lines.wait_for("innerloop: intercepting", 120)
    assert re.search(r"kube-proxy routes [0-9.]+:80 to the agents after [0-9.]+ s", lines.text()), \
        "the cold start saw kube-proxy follow (no fallback pause)"
    assert laptop.stop(proc) == 0
    before = namespace_snapshot(cluster, namespace, WRITABLE)

    # May read and even port-forward, but not update the Service: refused after the tunnels
    # started opening, in one line, with nothing changed.
    rules = [*VIEWER_RULES, {"apiGroups": [""], "resources": ["pods/portforward"],
                             "verbs": ["get", "create"]}]
    viewer = restricted_kubeconfig(cluster, namespace, tmp_path, rules)
    refused = laptop.run("intercept", "echo", "-n", namespace, "--port", f"{LOCAL_PORT}:80",
                         "--kubeconfig", str(viewer))
    message = one_line_error(refused, after_progress=True)
    assert message.startswith("forbidden: your kubeconfig user may not "), refused.stdout
    assert "tunnel" not in refused.stdout, refused.stdout
    assert namespace_snapshot(cluster, namespace, WRITABLE) == before
