"""The Kubernetes gateway against the real testbed: resolve, sidecar in and out, Service
takeover and restore (specs deep-equal the originals), rollouts of every workload kind, env,
the Ready-pod watch following churn, and every refusal as one actionable line."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from innerloop.agent.zipapp import build_zipapp
from innerloop.core import agent_patch, rollout, service_patch
from innerloop.core.errors import ClusterError, ConfigError, UserError
from innerloop.core.request import PortSpec
from innerloop.core.targets import WorkloadRef
from innerloop.k8s.gateway import Gateway
from innerloop.k8s.rbac import ENV_PERMISSIONS, intercept_permissions

from tools.cluster import Cluster, parse_answer
from tools.sample import manifests

pytestmark = pytest.mark.e2e

ROLLOUT_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def agent() -> bytes:
    return build_zipapp()


@pytest.fixture
async def gateway(cluster: Cluster) -> AsyncIterator[Gateway]:
    gw = await Gateway.connect(str(cluster.kubeconfig))
    yield gw
    await gw.close()


def agent_config(config_map: str, image: str = manifests.PYTHON_IMAGE) -> agent_patch.AgentConfig:
    return agent_patch.AgentConfig(image=image, config_map=config_map, image_pull_policy="Never")


def spec_of(cluster: Cluster, namespace: str, ref: str) -> dict[str, Any]:
    spec: dict[str, Any] = cluster.kubectl_json("-n", namespace, "get", ref)["spec"]
    return spec


async def install(
    gw: Gateway, namespace: str, ref: WorkloadRef, agent: bytes, app_port: int
) -> dict[str, Any]:
    config_map = await gw.ensure_agent_config_map(namespace, agent)
    config = agent_config(config_map)
    workload = await gw.update_workload(ref, lambda w: agent_patch.install_agent(w, config, [app_port]))
    await gw.wait_rollout(ref, ROLLOUT_TIMEOUT)
    return workload


async def intercept_and_restore(
    cluster: Cluster, gw: Gateway, namespace: str, service: str, spec: str, agent: bytes
) -> None:
    """The full cycle the intercept manager drives, checked against the cluster at each step."""
    resolution = await gw.resolve(namespace, service, PortSpec.parse(spec))
    target = resolution.target
    ref = f"{target.workload.kind.lower()}/{target.workload.name}"
    workload_before = spec_of(cluster, namespace, ref)
    service_before = spec_of(cluster, namespace, f"service/{service}")
    await gw.check_permissions(
        namespace,
        intercept_permissions(target.workload, rollout.manual_rollout(resolution.workload))
        + ENV_PERMISSIONS,
    )

    workload = await install(gw, namespace, target.workload, agent, target.container_port)
    layout = agent_patch.agent_layout(workload)
    assert layout is not None
    live = await gw.get_workload(target.workload)
    config = agent_config(agent_patch.agent_config_map_name(agent))
    assert (
        agent_patch.agent_status(live, config, [target.container_port]) is agent_patch.AgentStatus.CURRENT
    )
    pods = cluster.pods(namespace, service)
    for pod in pods:
        containers = cluster.kubectl_json("-n", namespace, "get", "pod", pod)["spec"]["containers"]
        assert [c["name"] for c in containers] == ["echo", "innerloop-agent"]

    listen = layout.listen_port(target.container_port)
    await gw.update_service(
        namespace,
        service,
        lambda s: service_patch.take_over_service(s, target.service_port.label(), listen),
    )
    assert spec_of(cluster, namespace, f"service/{service}")["ports"][0]["targetPort"] == listen
    [summary] = await gw.list_services(namespace)
    assert summary.agent and summary.taken_over == (target.service_port.label(),)
    # Resolving again (the warm path) sees through the takeover to the original port.
    again = await gw.resolve(namespace, service, PortSpec.parse(spec))
    assert again.target == target

    # Traffic through the Service now passes the agents, which hand it to the app.
    cluster.start_client(namespace)
    cluster.wait_service_rules(namespace, service, set(pods))
    result = cluster.load_via_exec(namespace, f"http://{service}/through-agent", count=30, rate=100)
    assert result.failures == [] and result.pods == set(pods)

    await gw.update_service(namespace, service, service_patch.restore_service)
    await gw.update_workload(target.workload, agent_patch.remove_agent)
    await gw.wait_rollout(target.workload, ROLLOUT_TIMEOUT)
    assert spec_of(cluster, namespace, f"service/{service}") == service_before
    assert spec_of(cluster, namespace, ref) == workload_before
    [summary] = await gw.list_services(namespace)
    assert not summary.agent and summary.taken_over == ()


async def test_deployment_cycle(
    cluster: Cluster, namespace: str, gateway: Gateway, agent: bytes
) -> None:
    cluster.deploy_echo(namespace)
    await intercept_and_restore(cluster, gateway, namespace, "echo", "8080", agent)


async def test_statefulset_with_named_target_port(
    cluster: Cluster, namespace: str, gateway: Gateway, agent: bytes
) -> None:
    cluster.deploy_echo(namespace, statefulset=True)
    resolution = await gateway.resolve(namespace, "echo-sts", PortSpec.parse("http"))
    assert resolution.target.service_port.target_port == "http"
    assert (resolution.target.container, resolution.target.container_port) == ("echo", 8080)
    await intercept_and_restore(cluster, gateway, namespace, "echo-sts", "http", agent)


async def test_bare_replicaset_is_rolled_pod_by_pod(
    cluster: Cluster, namespace: str, gateway: Gateway, agent: bytes
) -> None:
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "echo", "labels": {"app": "echo"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "echo"}},
            "template": manifests.echo_pod_template("echo"),
        },
    }
    objects = [o for o in manifests.echo_objects() if o["kind"] != "Deployment"]
    cluster.apply(namespace, [*objects, rs])
    ref = WorkloadRef("ReplicaSet", "echo", namespace)
    await gateway.wait_rollout(ref, ROLLOUT_TIMEOUT)
    before = spec_of(cluster, namespace, "replicaset/echo")
    old_pods = set(cluster.pods(namespace, "echo"))

    target = (await gateway.resolve(namespace, "echo", PortSpec.parse("8080"))).target
    assert target.workload == ref
    steps: list[str] = []
    config_map = await gateway.ensure_agent_config_map(namespace, agent)
    config = agent_config(config_map)
    await gateway.update_workload(ref, lambda w: agent_patch.install_agent(w, config, [8080]))
    await gateway.wait_rollout(ref, ROLLOUT_TIMEOUT, steps.append)
    new_pods = set(cluster.pods(namespace, "echo"))
    assert len(new_pods) == 2 and not new_pods & old_pods
    assert any(s.startswith("replacing pod") for s in steps), steps
    for pod in new_pods:
        obj = cluster.kubectl_json("-n", namespace, "get", "pod", pod)
        assert agent_patch.pod_has_agent(obj) and rollout.pod_ready(obj)

    await gateway.update_workload(ref, agent_patch.remove_agent)
    await gateway.wait_rollout(ref, ROLLOUT_TIMEOUT)
    assert spec_of(cluster, namespace, "replicaset/echo") == before
    for pod in cluster.pods(namespace, "echo"):
        assert not agent_patch.pod_has_agent(cluster.kubectl_json("-n", namespace, "get", "pod", pod))


async def test_rollout_of_an_image_without_python_fails_fast(
    cluster: Cluster, namespace: str, gateway: Gateway, agent: bytes
) -> None:
    cluster.deploy_echo(namespace)
    ref = WorkloadRef("Deployment", "echo", namespace)
    before = spec_of(cluster, namespace, "deployment/echo")
    config_map = await gateway.ensure_agent_config_map(namespace, agent)
    config = agent_config(config_map, image="localhost/busybox:1")
    await gateway.update_workload(ref, lambda w: agent_patch.install_agent(w, config, [8080]))
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ClusterError) as info:
        await gateway.wait_rollout(ref, ROLLOUT_TIMEOUT)
    assert loop.time() - started < 30, "a broken agent is reported, not waited out"
    message = str(info.value)
    assert message.startswith("deployment/echo rollout cannot finish: pod echo-")
    assert "container innerloop-agent" in message and "python3" in message, message
    # The undo a failed cold start performs puts the Deployment back as it was.
    await gateway.update_workload(ref, agent_patch.remove_agent)
    await gateway.wait_rollout(ref, ROLLOUT_TIMEOUT)
    assert spec_of(cluster, namespace, "deployment/echo") == before
    assert len(cluster.pods(namespace, "echo")) == 2


async def test_waiting_for_a_rollout_is_cancellable(
    cluster: Cluster, namespace: str, gateway: Gateway, agent: bytes
) -> None:
    cluster.deploy_echo(namespace)
    ref = WorkloadRef("Deployment", "echo", namespace)
    config = agent_config(await gateway.ensure_agent_config_map(namespace, agent))
    await gateway.update_workload(ref, lambda w: agent_patch.install_agent(w, config, [8080]))
    waiting = asyncio.create_task(gateway.wait_rollout(ref, ROLLOUT_TIMEOUT))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    loop = asyncio.get_running_loop()
    cancelled_at = loop.time()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert loop.time() - cancelled_at < 1.0
    # The rollout itself goes on; waiting again sees it through.
    await gateway.wait_rollout(ref, ROLLOUT_TIMEOUT)


async def test_update_retries_on_a_concurrent_edit(
    cluster: Cluster, namespace: str, gateway: Gateway
) -> None:
    cluster.deploy_echo(namespace, replicas=1)
    ref = WorkloadRef("Deployment", "echo", namespace)
    calls = 0

    def change(w: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:  # someone else writes between our read and our replace
            cluster.kubectl("-n", namespace, "annotate", "deployment/echo", "other=edit")
        out = copy.deepcopy(w)
        out["metadata"].setdefault("annotations", {})["ours"] = "yes"
        return out

    updated = await gateway.update_workload(ref, change)
    assert calls >= 2, "the first replace must have met a 409 and started over"
    assert {"other": "edit", "ours": "yes"}.items() <= updated["metadata"]["annotations"].items()
    # A change that changes nothing writes nothing (a Service: no controller writes its status).
    before = await gateway.get_service(namespace, "echo")
    unchanged = await gateway.update_service(namespace, "echo", lambda s: s)
    after = await gateway.get_service(namespace, "echo")
    assert before["metadata"]["resourceVersion"] == unchanged["metadata"]["resourceVersion"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_environment_of_the_workload(
    cluster: Cluster, namespace: str, gateway: Gateway
) -> None:
    pods = cluster.deploy_echo(namespace)
    pod = cluster.kubectl_json("-n", namespace, "get", "pod", pods[0])
    env = await gateway.environment(pod, "echo")
    assert env.values == {
        "CONFIG_VALUE": manifests.CONFIG_VALUE,  # envFrom a ConfigMap
        "PORT": "8080",
        "POD_NAME": pods[0],  # fieldRef
        "SECRET_VALUE": manifests.SECRET_VALUE,  # secretKeyRef
    }
    assert env.warnings == ()


async def test_ready_pods_follow_churn(cluster: Cluster, namespace: str, gateway: Gateway) -> None:
    pods = set(cluster.deploy_echo(namespace))

    async def until(watch: Any, predicate: Any) -> set[str]:
        async with asyncio.timeout(60):
            while True:
                names = set(await anext(watch))
                if predicate(names):
                    return names

    async with gateway.watch_ready_pods(namespace, "app=echo") as watch:
        assert set(await anext(watch)) == pods
        cluster.kubectl("-n", namespace, "scale", "deployment/echo", "--replicas=3")
        three = await until(watch, lambda names: len(names) == 3)
        assert pods < three
        victim = min(pods)
        cluster.kubectl("-n", namespace, "delete", "pod", victim, "--wait=false")
        # A terminating pod leaves the set at once; its replacement joins when Ready.
        await until(watch, lambda names: victim not in names)
        after = await until(watch, lambda names: len(names) == 3)
        assert victim not in after


async def test_refusals_are_one_line(cluster: Cluster, namespace: str, gateway: Gateway) -> None:
    cluster.deploy_echo(namespace, replicas=1)
    bare = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bare", "labels": {"app": "bare"}},
        "spec": manifests.echo_pod_template("bare")["spec"],
    }
    cluster.apply(
        namespace,
        [
            bare,
            manifests.echo_service("bare"),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "manual"},
                "spec": {"ports": [{"port": 80}]},
            },
        ],
    )
    cases = [
        ("nope-ns-123", "echo", "8080", UserError, "namespace 'nope-ns-123' not found; pick one"),
        (
            namespace,
            "nope",
            "8080",
            UserError,
            (
                f"service 'nope' not found in namespace "
                f"'{namespace}'; `innerloop list` shows what there is"
            ),
        ),
        (
            namespace,
            "echo",
            "8080:8081",
            UserError,
            "service 'echo' has no port 8081; its ports are 80/http",
        ),
        (namespace, "bare", "8080", UserError, "pod 'bare' has no controller (a bare Pod)"),
        (namespace, "manual", "80", UserError, "service 'manual' has no selector"),
    ]
    before = cluster.kubectl("-n", namespace, "get", "deploy,svc,pod,cm", "-o", "json").stdout
    for ns, service, port, kind, message in cases:
        with pytest.raises(kind) as info:
            await gateway.resolve(ns, service, PortSpec.parse(port))
        assert str(info.value).startswith(message), str(info.value)
        assert "\n" not in str(info.value)
    after = cluster.kubectl("-n", namespace, "get", "deploy,svc,pod,cm", "-o", "json").stdout
    assert _specs(after) == _specs(before), "refusals change nothing"


def _specs(listing: str) -> list[tuple[str, Any]]:
    return [(o["metadata"]["name"], o.get("spec")) for o in json.loads(listing)["items"]]


async def test_unreachable_cluster_and_bad_kubeconfig(tmp_path: Path, cluster: Cluster) -> None:
    kubeconfig = json.loads(cluster.kubectl("config", "view", "--raw", "-o", "json").stdout)
    kubeconfig["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(json.dumps(kubeconfig))
    gw = await Gateway.connect(str(dead))
    with pytest.raises(ClusterError) as info:
        await gw.get_service("default", "kubernetes")
    assert str(info.value).startswith("cannot reach the API server at https://127.0.0.1:1: ")
    assert "check that the cluster is running" in str(info.value)
    with pytest.raises(ClusterError, match=r"^cannot reach the API server at https://127.0.0.1:1"):
        await gw.port_forward("default", "x", 8080)
    await gw.close()

    with pytest.raises(ConfigError, match=r"^no kubeconfig at /nonexistent/kubeconfig"):
        await Gateway.connect("/nonexistent/kubeconfig")
    with pytest.raises(ConfigError, match=r"has no context 'other'; its contexts are "):
        await Gateway.connect(str(cluster.kubeconfig), context="other")
    garbage = tmp_path / "garbage"
    garbage.write_text("this: [is not a kubeconfig")
    with pytest.raises(ConfigError, match=r"^cannot read kubeconfig "):
        await Gateway.connect(str(garbage))


VIEWER_RULES = [
    {"apiGroups": [""], "resources": ["services", "pods"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": ["get"]},
]
"""May read Services and Pods but not port-forward nor patch."""


def restricted_kubeconfig(
    cluster: Cluster, namespace: str, tmp_path: Path, rules: list[dict[str, Any]] | None = None
) -> Path:
    """A ServiceAccount `viewer` with a Role of `rules` (default VIEWER_RULES) in `namespace`."""
    cluster.apply(
        namespace,
        [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "viewer"}},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "viewer"},
                "rules": VIEWER_RULES if rules is None else rules,
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "viewer"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "viewer",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": namespace}],
            },
        ],
    )
    token = cluster.kubectl("-n", namespace, "create", "token", "viewer").stdout.strip()
    config = json.loads(cluster.kubectl("config", "view", "--raw", "-o", "json").stdout)
    config["users"] = [{"name": "viewer", "user": {"token": token}}]
    config["contexts"][0]["context"].update(user="viewer", namespace=namespace)
    path = tmp_path / "viewer.kubeconfig"
    path.write_text(json.dumps(config))
    return path


async def test_forbidden_by_rbac(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    pods = cluster.deploy_echo(namespace, replicas=1)
    gw = await Gateway.connect(str(restricted_kubeconfig(cluster, namespace, tmp_path)))
    assert gw.namespace == namespace
    user = f"system:serviceaccount:{namespace}:viewer"
    try:
        # Reading works, so resolution does.
        resolution = await gw.resolve(namespace, "echo", PortSpec.parse("8080"))
        with pytest.raises(ClusterError) as info:
            await gw.check_permissions(
                namespace, intercept_permissions(resolution.target.workload, False)
            )
        message = str(info.value)
        assert message.startswith(
            "forbidden: your kubeconfig user may not update services, get pods/portforward, "
            "create pods/portforward, get configmaps, create configmaps, update "
            f"deployments.apps in namespace '{namespace}' (RBAC)"
        ), message
        assert "ask your cluster admin" in message

        with pytest.raises(ClusterError) as info:
            await gw.port_forward(namespace, pods[0], 8080)
        # The WebSocket is authorized as `get` here; clusters that also want `create` say so.
        assert re.fullmatch(
            f"forbidden: {re.escape(user)} may not (get|create) pods/portforward in namespace "
            f"'{namespace}' \\(RBAC\\); ask your cluster admin for that permission "
            "\\(docs/usage.md lists what innerloop needs\\)",
            str(info.value),
        ), str(info.value)
        with pytest.raises(ClusterError) as info:
            await gw.update_workload(resolution.target.workload, lambda w: {**w, "x": 1})
        assert str(info.value).startswith(
            f"forbidden: {user} may not update deployments.apps in namespace '{namespace}'"
        )
        with pytest.raises(ClusterError) as info:
            await gw.environment(
                cluster.kubectl_json("-n", namespace, "get", "pod", pods[0]), "echo"
            )
        assert re.match(
            f"forbidden: {re.escape(user)} may not get (configmaps|secrets) ", str(info.value)
        ), str(info.value)
    finally:
        await gw.close()
    deployment = cluster.kubectl_json("-n", namespace, "get", "deployment/echo")
    assert "innerloop.dev/restore" not in deployment["metadata"].get("annotations", {})


def test_gateway_answers_from_the_developer_netns(cluster: Cluster, namespace: str) -> None:
    """The laptop side only reaches the API server; resolution and port-forward still work."""
    if not cluster.testbed:
        pytest.skip("the developer netns belongs to the local testbed")
    from tools.testbed import netns

    pods = cluster.deploy_echo(namespace, replicas=1)
    script = f"""
import asyncio
from innerloop.core.request import PortSpec
from innerloop.k8s.gateway import Gateway

async def main():
    gw = await Gateway.connect({str(cluster.kubeconfig)!r})
    target = (await gw.resolve({namespace!r}, "echo", PortSpec.parse("http"))).target
    pf = await gw.port_forward({namespace!r}, {pods[0]!r}, target.container_port)
    await pf.send(b"GET /from-laptop HTTP/1.0\\r\\n\\r\\n")
    data = b""
    while b"config=" not in data:
        data += await pf.recv()
    print(data.split(b"\\r\\n\\r\\n", 1)[1].decode())
    await pf.close()
    await gw.close()

asyncio.run(main())
"""
    proc = netns.dev_netns_run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    answer = parse_answer(proc.stdout)
    assert answer["pod"] == pods[0] and answer["path"] == "/from-laptop"
