"""The CLI on the testbed: bad input is one actionable line and changes nothing; `uninstall`
puts the workload and Service specs back exactly; `list`, `status` and `leave` tell the truth."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_k8s_gateway import restricted_kubeconfig
from tests.helpers.snapshot import WRITABLE, namespace_snapshot
from tools.cluster import Cluster
from tools.laptop import Laptop
from tools.net import free_port
from tools.sample import manifests

pytestmark = pytest.mark.e2e


def one_line_error(result: subprocess.CompletedProcess[str], after_progress: bool = False) -> str:
    """The error line; nothing else is printed unless the start got far enough to report."""
    assert result.returncode == 1, result.stdout
    lines = [ln for ln in result.stdout.splitlines() if ln.strip()]
    assert "Traceback" not in result.stdout
    if after_progress:
        lines = lines[-1:]
    assert len(lines) == 1, lines
    assert lines[0].startswith("innerloop: "), lines[0]
    return lines[0].removeprefix("innerloop: ")


def test_bad_input_is_one_line_and_changes_nothing(
    cluster: Cluster, namespace: str, laptop: Laptop, tmp_path: Path
) -> None:
    cluster.deploy_echo(namespace, replicas=1)
    bare = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "bare", "labels": {"app": "bare"}},
            "spec": manifests.echo_pod_template("bare")["spec"]}
    manual = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "manual"},
              "spec": {"ports": [{"port": 80}]}}
    cluster.apply(namespace, [bare, manifests.echo_service("bare"), manual])
    before = namespace_snapshot(cluster, namespace, WRITABLE)
    dead = json.loads(cluster.kubectl("config", "view", "--raw", "-o", "json").stdout)
    dead["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    (tmp_path / "dead").write_text(json.dumps(dead))
    viewer = restricted_kubeconfig(cluster, namespace, tmp_path)

    cases = [
        (["-n", "no-such-ns", "--port", "8080"], "namespace 'no-such-ns' not found"),
        (["nope", "--port", "8080"], "service 'nope' not found in namespace"),
        (["echo", "--port", "8080:8081"], "service 'echo' has no port 8081; its ports are 80/http"),
        (["bare", "--port", "8080"], "pod 'bare' has no controller (a bare Pod)"),
        (["manual", "--port", "80"], "service 'manual' has no selector"),
        (["echo", "--port", "8080", "--kubeconfig", str(tmp_path / "dead")],
         "cannot reach the API server at https://127.0.0.1:1"),
        (["echo", "--port", "8080", "--kubeconfig", str(viewer)],
         "forbidden: your kubeconfig user may not "),
        (["echo", "--port", "http:x"], "bad --port 'http:x'"),
    ]
    for args, expected in cases:
        argv = ["intercept", *(["echo"] if args[0].startswith("-") else []), *args]
        if "-n" not in args:
            argv += ["-n", namespace]
        message = one_line_error(laptop.run(*argv))
        assert expected in message, (argv, message)
        assert "Traceback" not in message and "see the log" not in message
    assert namespace_snapshot(cluster, namespace, WRITABLE) == before, "a refused intercept changes nothing"


@pytest.mark.parametrize("statefulset", [
    False,
    # long (INNERLOOP_LONG=1): test_uninstall.py::test_uninstall_leaves_the_namespace_as_it_was
    # intercepts a StatefulSet too and checks status, list, leave, the whole namespace after
    # uninstall and the pods' containers; this one's StatefulSet rollouts cost ~30 s.
    pytest.param(True, marks=pytest.mark.long),
], ids=["deployment", "statefulset"])
def test_uninstall_restores_the_exact_specs(
    cluster: Cluster, namespace: str, laptop: Laptop, statefulset: bool
) -> None:
    pods = cluster.deploy_echo(namespace, replicas=2, statefulset=statefulset)
    name = "echo-sts" if statefulset else "echo"
    workload = f"statefulset/{name}" if statefulset else f"deployment/{name}"
    specs_before = {ref: cluster.kubectl_json("-n", namespace, "get", ref)["spec"]
                    for ref in (workload, f"service/{name}")}

    local_port = free_port()  # nothing listens there: no traffic is sent
    proc, _lines, _ = laptop.intercept(namespace, name, f"{local_port}:http")
    status = laptop.run("status")
    assert f"{name}.{namespace}:80/http → 127.0.0.1:{local_port}" in status.stdout
    listed = laptop.run("list", "-n", namespace)
    [row] = [ln for ln in listed.stdout.splitlines() if ln.startswith(name + " ")]
    assert row.split()[3:] == ["yes", "80/http"], row
    left = laptop.run("leave", name, "-n", namespace)
    assert left.returncode == 0, left.stdout
    assert proc.wait(30) == 0
    assert "no intercepts" in laptop.run("status").stdout

    # Leaving keeps the agent (sticky); uninstall removes it and restores the Service.
    service = cluster.kubectl_json("-n", namespace, "get", f"service/{name}")
    assert service["spec"] != specs_before[f"service/{name}"]
    result = laptop.run("uninstall", name, "-n", namespace, timeout=240)
    assert result.returncode == 0, result.stdout
    for ref, spec in specs_before.items():
        now = cluster.kubectl_json("-n", namespace, "get", ref)
        assert now["spec"] == spec, ref
        assert "innerloop.dev/restore" not in (now["metadata"].get("annotations") or {})
    containers = {c["name"] for p in cluster.pods(namespace, name) for c in
                  cluster.kubectl_json("-n", namespace, "get", "pod", p)["spec"]["containers"]}
    assert containers == {"echo"}
    assert len(cluster.pods(namespace, name)) == len(pods)


def test_second_intercept_of_the_same_traffic_is_refused_naming_the_holder(
    cluster: Cluster, namespace: str, laptop: Laptop
) -> None:
    cluster.deploy_echo(namespace)
    cluster.start_client(namespace)
    _, local_port = laptop.start_app_on_a_free_port()
    first, _, _ = laptop.intercept(namespace, "echo", f"{local_port}:80")
    before = namespace_snapshot(cluster, namespace, WRITABLE)

    other = Laptop(cluster)  # another developer: another process, another client id
    try:
        message = one_line_error(other.run("intercept", "echo", "-n", namespace,
                                           "--port", f"{free_port()}:80"),
                                 after_progress=True)
    finally:
        other.close()
    assert message.startswith(f"echo.{namespace}:80/http is already intercepted by "), message
    assert f":{first.pid} for all requests; ask them to leave" in message, (
        "the holder is the first CLI, and its filter is named")
    assert namespace_snapshot(cluster, namespace, WRITABLE) == before
    url = f"http://{cluster.cluster_ip(namespace, 'echo')}/still-mine"
    bodies = [r["body"] for r in cluster.load_via_exec(namespace, url, count=10).records]
    assert all("pod=local" in b for b in bodies), bodies
