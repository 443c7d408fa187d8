"""The workload's volumes on the testbed: a process innerloop launches in the laptop netns reads
them at their container paths, sees a ConfigMap edit within 5 s, and talks to the API server as
the workload's service account through `load_incluster_config()`.

The test's own Deployment (`vols`, the echo app) mounts a ConfigMap dir, a Secret key by
subPath, an emptyDir (listed as not copied) and the service-account projection of a
ServiceAccount that a Role lets list pods (and nothing else) in the test namespace.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.snapshot import namespace_snapshot
from tools.cluster import Cluster
from tools.laptop import Laptop, Lines
from tools.sample import manifests

pytestmark = pytest.mark.e2e
LOCAL_PORT = 18091
SETTINGS = "mode: blue\n"
PASSWORD = "pa55-from-secret"

PROBE = r'''
import errno, json, os, sys, time
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

NS, DONE = sys.argv[1], sys.argv[2]


def say(**kw):
    print("PROBE " + json.dumps(kw), flush=True)


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError as exc:
        return f"ERROR {exc!r}"


def write_errno(path):
    try:
        open(path, "w")
    except OSError as exc:
        return errno.errorcode.get(exc.errno)
    return "written"


config.load_incluster_config()
api = client.CoreV1Api()
pods = [p.metadata.name for p in api.list_namespaced_pod(NS).items]
try:
    api.list_namespaced_secret(NS)
    secrets = "allowed"
except ApiException as exc:
    secrets = exc.status
say(settings=read("/etc/app/settings.yaml"), password=read("/etc/creds/db-password"),
    listing=sorted(os.listdir("/etc/app")), exists=os.path.isfile("/etc/app/settings.yaml"),
    namespace=read("/var/run/secrets/kubernetes.io/serviceaccount/namespace"),
    write=write_errno("/etc/app/settings.yaml"), root=os.environ.get("INNERLOOP_VOLUMES"),
    pods=pods, secrets=secrets)
last = None
while not os.path.exists(DONE):
    now = read("/etc/app/settings.yaml")
    if now != last:
        print("SEEN " + json.dumps(now), flush=True)
        last = now
    time.sleep(0.1)
'''
"""The local process: reads, lists pods as the service account, then reports every change."""


def vols_objects() -> list[dict[str, Any]]:
    deployment = manifests.echo_deployment("vols", replicas=1)
    spec = deployment["spec"]["template"]["spec"]
    spec["serviceAccountName"] = "lister"
    spec["volumes"] += [
        {"name": "settings", "configMap": {"name": "vols-settings"}},
        {"name": "creds", "secret": {"secretName": "vols-creds", "defaultMode": 0o400}},
        {"name": "scratch", "emptyDir": {}},
    ]
    spec["containers"][0]["volumeMounts"] += [
        {"name": "settings", "mountPath": "/etc/app", "readOnly": True},
        {"name": "creds", "mountPath": "/etc/creds/db-password", "subPath": "password"},
        {"name": "scratch", "mountPath": "/scratch"},
    ]
    rules = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "lister"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "pod-lister"}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "lister-lists-pods"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "pod-lister"},
         "subjects": [{"kind": "ServiceAccount", "name": "lister"}]},
        manifests.configmap("vols-settings", {"settings.yaml": SETTINGS}),
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vols-creds"},
         "type": "Opaque", "stringData": {"password": PASSWORD}},
        manifests.echo_code(), manifests.echo_config(), manifests.echo_secret(),
        deployment, manifests.echo_service("vols"),
    ]


def deploy_vols(cluster: Cluster, namespace: str) -> None:
    cluster.apply(namespace, vols_objects())
    cluster.wait_rollout(namespace, "deployment/vols")
    cluster.wait_endpoints(namespace, "vols", 1)


def probe(lines: Lines, timeout: float) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(lines.wait_for("PROBE {", timeout).removeprefix("PROBE "))
    return result


def seen(lines: Lines, content: str, timeout: float) -> None:
    """The probe read `content` at the container path (a line per change it sees)."""
    lines.wait_for("SEEN " + json.dumps(content), timeout)


def check_volumes(cluster: Cluster, namespace: str, lines: Lines) -> Path:
    """The first report, then an edit of the ConfigMap seen within 5 s; the copies' root."""
    first = probe(lines, 180)
    assert first["settings"] == SETTINGS, first
    assert first["password"] == PASSWORD, first
    assert first["listing"] == ["settings.yaml"], first
    assert first["exists"] is True and first["write"] == "EROFS", first
    assert first["namespace"] == namespace, first
    assert any(p.startswith("vols-") for p in first["pods"]), first
    assert first["secrets"] == 403, "the token is the service account's, not the user's"
    root = Path(first["root"])
    assert root.is_dir() and root.stat().st_mode & 0o777 == 0o700
    assert (root / "creds" / "password").stat().st_mode & 0o777 == 0o600
    seen(lines, SETTINGS, 10)

    t0 = time.monotonic()
    cluster.kubectl("-n", namespace, "patch", "configmap", "vols-settings", "--type=merge",
                    "-p", json.dumps({"data": {"settings.yaml": "mode: green\n"}}))
    seen(lines, "mode: green\n", 5)
    assert time.monotonic() - t0 < 5.5  # the patch call itself is part of the wait
    assert "volumes not copied (their data is not in the API server): " \
           "scratch (emptyDir) at /scratch" in lines.text()
    return root


def test_an_intercepted_command_reads_the_workloads_volumes(
    cluster: Cluster, namespace: str, laptop: Laptop, tmp_path: Path
) -> None:
    deploy_vols(cluster, namespace)
    script, done = tmp_path / "probe.py", tmp_path / "done"
    script.write_text(PROBE)

    proc, lines = laptop.innerloop("intercept", "vols", "-n", namespace, "--port",
                                   f"{LOCAL_PORT}:http", "--", sys.executable, str(script),
                                   namespace, str(done))
    root = check_volumes(cluster, namespace, lines)
    done.touch()
    assert proc.wait(60) == 0, lines.text()
    assert not root.exists(), "the copies end with the command"


def test_run_like_reads_the_workloads_volumes_and_changes_nothing(
    cluster: Cluster, namespace: str, laptop: Laptop, tmp_path: Path
) -> None:
    deploy_vols(cluster, namespace)
    before = namespace_snapshot(cluster, namespace)
    script, done = tmp_path / "probe.py", tmp_path / "done"
    script.write_text(PROBE)

    proc, lines = laptop.innerloop("run", "-n", namespace, "--like", "deploy/vols", "--",
                                   sys.executable, str(script), namespace, str(done))
    root = check_volumes(cluster, namespace, lines)
    done.touch()
    assert proc.wait(60) == 0, lines.text()
    assert not root.exists(), "the copies end with the command"

    after = namespace_snapshot(cluster, namespace)
    edited = ("ConfigMap", "vols-settings")
    assert after.pop(edited)["data"][0] == {"settings.yaml": "mode: green\n"}
    before.pop(edited)
    assert after == before
