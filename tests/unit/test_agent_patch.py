"""Sidecar patch tables: the agent in and out of every workload kind, its ports, its status,
and which agent ConfigMaps a namespace no longer uses.

The promise under test: after removal, the workload deep-equals the original.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from innerloop.core.agent_patch import (
    AGENT_CONTAINER,
    DEFAULT_AGENT_IMAGE,
    AgentConfig,
    AgentLayout,
    AgentStatus,
    agent_config_map,
    agent_config_map_name,
    agent_image_for,
    agent_layout,
    agent_status,
    install_agent,
    remove_agent,
    unused_agent_config_maps,
)
from innerloop.core.errors import UserError
from innerloop.core.manifest import RESTORE_ANNOTATION, pod_spec
from k8s_manifests import AGENT_CONFIG, config_map, container, workload

KINDS = ["Deployment", "StatefulSet", "ReplicaSet"]
DATA_VOLUME = {"name": "data", "emptyDir": {}}


def agent_of(w: dict[str, Any]) -> dict[str, Any]:
    [agent] = [c for c in pod_spec(w)["containers"] if c["name"] == AGENT_CONTAINER]
    return agent


def record(obj: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(obj["metadata"]["annotations"][RESTORE_ANNOTATION])
    return loaded


CASES = {
    "single container": {"containers": [container()]},
    "existing volumes": {"containers": [container()], "volumes": [DATA_VOLUME]},
    "multi-container": {"containers": [container("envoy", ports=((15001, None),)), container()]},
    "multi-port": {"containers": [container(ports=((8080, "http"), (9090, "metrics")))]},
    "ports in our range": {
        "containers": [container(ports=((15400, None), (15401, "a"), (15409, "h"), (8080, "http")))]
    },
    "undeclared port": {"containers": [container(ports=())]},
    "init container port": {
        "containers": [container()],
        "initContainers": [container("init", ports=((15400, None),))],
    },
}


def make(kind: str, case: str, **kw: Any) -> dict[str, Any]:
    args = dict(CASES[case])
    init = args.pop("initContainers", None)
    w = workload(kind, **args, **kw)
    if init:
        pod_spec(w)["initContainers"] = init
    return w


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_install_then_remove_is_the_original(kind: str, case: str) -> None:
    original = make(kind, case, annotations={"team": "shop"})
    frozen = copy.deepcopy(original)
    installed = install_agent(original, AGENT_CONFIG, [8080])
    assert original == frozen, "builders never mutate their input"
    assert remove_agent(installed) == original
    # idempotent: installing again changes nothing
    assert install_agent(installed, AGENT_CONFIG, [8080]) == installed
    assert agent_status(installed, AGENT_CONFIG, [8080]) is AgentStatus.CURRENT
    assert agent_status(original, AGENT_CONFIG, [8080]) is AgentStatus.ABSENT


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_agent_ports_never_collide_with_the_pod(kind: str, case: str) -> None:
    original = make(kind, case)
    installed = install_agent(original, AGENT_CONFIG, [8080, 9090])
    layout = agent_layout(installed)
    assert layout is not None
    spec = pod_spec(original)
    used = {
        p["containerPort"]
        for c in spec["containers"] + spec.get("initContainers", [])
        for p in c.get("ports", [])
    } | {8080, 9090}
    ours = [layout.tunnel_port, layout.health_port] + [listen for listen, _ in layout.routes]
    assert len(set(ours)) == len(ours)
    assert not set(ours) & used
    assert layout.app_ports() == {8080, 9090}


def test_sidecar_shape() -> None:
    installed = install_agent(workload(), AGENT_CONFIG, [8080])
    agent = agent_of(installed)
    assert agent["command"] == [
        "python3",
        "/innerloop-agent/agent.pyz",
        "--tunnel-port",
        "15400",
        "--health-port",
        "15409",
        "--route",
        "15401:8080",
    ]
    assert agent["image"] == "localhost/python3:1"
    assert agent["imagePullPolicy"] == "Never"
    # No probe: a restarted agent's kept the pod out of the endpoints past its start (issue 11).
    assert "readinessProbe" not in agent and "startupProbe" not in agent
    assert agent["volumeMounts"] == [
        {"name": "innerloop-agent", "mountPath": "/innerloop-agent", "readOnly": True}
    ]
    env = {e["name"]: e for e in agent["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert agent["resources"] == {"requests": {"cpu": "10m", "memory": "32Mi"}}
    assert {"containerPort": 15401, "protocol": "TCP"} in agent["ports"]
    assert pod_spec(installed)["volumes"] == [
        {"name": "innerloop-agent", "configMap": {"name": "innerloop-agent-0123456789"}}
    ]
    assert pod_spec(installed)["containers"][0] == container(), "the app is untouched"
    rec = record(installed)
    assert rec["container"] == "innerloop-agent"
    assert rec["volume"] == "innerloop-agent"
    assert rec["volumesAdded"] is True
    assert rec["agent"]["routes"] == [[15401, 8080]]
    assert agent_layout(installed) == AgentLayout(15400, 15409, ((15401, 8080),))
    assert agent_layout(workload()) is None


def test_layout_listen_port_lookup() -> None:
    layout = AgentLayout(15400, 15409, ((15401, 8080), (15402, 9090)))
    assert layout.listen_port(9090) == 15402
    with pytest.raises(KeyError):
        layout.listen_port(1234)


@pytest.mark.parametrize(
    "change, status",
    [
        ({"config": AgentConfig("localhost/python3:2", AGENT_CONFIG.config_map)}, AgentStatus.OUTDATED),
        ({"config": AgentConfig(AGENT_CONFIG.image, "innerloop-agent-ffffffffff")}, AgentStatus.OUTDATED),
        ({"ports": [8080, 9090]}, AgentStatus.OUTDATED),
        # a port already routed is no reason to roll out
        ({"ports": []}, AgentStatus.CURRENT),
    ],
)
def test_agent_status(change: dict[str, Any], status: AgentStatus) -> None:
    installed = install_agent(workload(), AGENT_CONFIG, [8080])
    config = change.get("config", AGENT_CONFIG)
    assert agent_status(installed, config, change.get("ports", [8080])) is status


def test_agent_status_sees_a_hand_edited_sidecar() -> None:
    installed = install_agent(workload(), AGENT_CONFIG, [8080])
    agent_of(installed)["image"] = "somebody/else:1"
    assert agent_status(installed, AGENT_CONFIG, [8080]) is AgentStatus.OUTDATED
    gone = install_agent(workload(), AGENT_CONFIG, [8080])
    pod_spec(gone)["volumes"] = []
    assert agent_status(gone, AGENT_CONFIG, [8080]) is AgentStatus.OUTDATED
    del pod_spec(gone)["volumes"]
    assert remove_agent(gone) == workload(), "a volume removed by hand is no obstacle"
    no_container = install_agent(workload(), AGENT_CONFIG, [8080])
    pod_spec(no_container)["containers"] = [container()]
    assert agent_status(no_container, AGENT_CONFIG, [8080]) is AgentStatus.OUTDATED


def test_api_server_defaults_on_the_sidecar_keep_it_current() -> None:
    installed = install_agent(workload(), AGENT_CONFIG, [8080])
    agent = agent_of(installed)
    agent["terminationMessagePath"] = "/dev/termination-log"
    agent["terminationMessagePolicy"] = "File"
    agent["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] = "v1"
    assert agent_status(installed, AGENT_CONFIG, [8080]) is AgentStatus.CURRENT


@pytest.mark.parametrize("kind", KINDS)
def test_upgrade_keeps_ports_and_restores_the_original(kind: str) -> None:
    original = make(kind, "existing volumes")
    v1 = install_agent(original, AGENT_CONFIG, [8080])
    # the user edits their own container while the agent is in
    pod_spec(v1)["containers"][0]["image"] = "localhost/app:2"
    edited = remove_agent(v1)
    v2 = install_agent(v1, AgentConfig("localhost/python3:2", "innerloop-agent-aaaaaaaaaa"), [9090])
    assert agent_layout(v2) == AgentLayout(15400, 15409, ((15401, 8080), (15402, 9090)))
    assert agent_of(v2)["image"] == "localhost/python3:2"
    assert [c["name"] for c in pod_spec(v2)["containers"]] == ["app", "innerloop-agent"]
    assert remove_agent(v2) == edited


def test_upgrade_moves_a_port_the_app_took_since() -> None:
    v1 = install_agent(workload(), AGENT_CONFIG, [8080])
    pod_spec(v1)["containers"][0]["ports"].append({"containerPort": 15401, "protocol": "TCP"})
    assert agent_layout(install_agent(v1, AGENT_CONFIG, [8080])) == AgentLayout(
        15400, 15409, ((15402, 8080),)
    )


def test_remove_without_agent_is_a_copy() -> None:
    w = workload()
    out = remove_agent(w)
    assert out == w and out is not w


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda w: pod_spec(w)["containers"].append(container("innerloop-agent", ports=())),
            "deployment/orders already has a container named 'innerloop-agent' that innerloop did not",
        ),
        (
            lambda w: pod_spec(w).setdefault("volumes", []).append({"name": "innerloop-agent"}),
            "deployment/orders already has a volume named 'innerloop-agent' that innerloop did not",
        ),
        (
            lambda w: w["metadata"].setdefault("annotations", {}).update({RESTORE_ANNOTATION: "{"}),
            "annotation innerloop.dev/restore on deployment/orders is not JSON",
        ),
        (
            lambda w: (
                w["metadata"]
                .setdefault("annotations", {})
                .update({RESTORE_ANNOTATION: '{"v": 99}'})
            ),
            "annotation innerloop.dev/restore on deployment/orders was written by another innerloop",
        ),
    ],
)
def test_install_refuses(edit: Any, message: str) -> None:
    w = workload()
    edit(w)
    with pytest.raises(UserError) as info:
        install_agent(w, AGENT_CONFIG, [8080])
    assert str(info.value).startswith(message)


def test_no_free_port_left() -> None:
    w = workload(containers=[container(ports=tuple((p, None) for p in range(15400, 65536)))])
    with pytest.raises(UserError, match="no free port for the innerloop agent"):
        install_agent(w, AGENT_CONFIG, [8080])


def test_config_map() -> None:
    agent = b"PK\x03\x04 zipapp bytes"
    name = agent_config_map_name(agent)
    assert name.startswith("innerloop-agent-") and len(name) == len("innerloop-agent-") + 12
    assert agent_config_map_name(agent + b"!") != name
    cm = agent_config_map("shop", agent)
    assert cm["metadata"]["name"] == name and cm["metadata"]["namespace"] == "shop"
    assert base64.b64decode(cm["binaryData"]["agent.pyz"]) == agent


# --- round trip, generated ----------------------------------------------------------------------

names = st.text(alphabet="abcdefghij-", min_size=1, max_size=8).filter(
    lambda s: s != AGENT_CONTAINER
)
ports = st.lists(st.integers(1, 65535), max_size=4, unique=True)


@st.composite
def workloads(draw: st.DrawFn) -> dict[str, Any]:
    cnames = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    containers = [container(n, ports=tuple((p, None) for p in draw(ports))) for n in cnames]
    volumes = draw(
        st.one_of(
            st.none(),
            st.lists(
                st.builds(lambda n: {"name": n, "emptyDir": {}}, names),
                max_size=2,
                unique_by=lambda v: v["name"],
            ),
        )
    )
    annotations = draw(st.one_of(st.none(), st.dictionaries(names, names, max_size=2)))
    return workload(
        draw(st.sampled_from(KINDS)),
        containers=containers,
        volumes=volumes,
        annotations=annotations,
    )


@given(workloads(), st.lists(st.integers(1, 65535), min_size=1, max_size=3))
def test_round_trip_generated(w: dict[str, Any], app_ports: list[int]) -> None:
    installed = install_agent(w, AGENT_CONFIG, app_ports)
    assert remove_agent(installed) == w
    assert install_agent(installed, AGENT_CONFIG, app_ports) == installed
    layout = agent_layout(installed)
    assert layout is not None and layout.app_ports() == set(app_ports)


# --- agent ConfigMaps left behind ---------------------------------------------------------------

OURS = {"app.kubernetes.io/managed-by": "innerloop"}
CM = AGENT_CONFIG.config_map
OLD_CM = "innerloop-agent-ffffffffffff"


def with_agent(w: dict[str, Any]) -> dict[str, Any]:
    return install_agent(w, AGENT_CONFIG, [8080])


def retired(w: dict[str, Any], pods: int = 0) -> dict[str, Any]:
    """A Deployment's old ReplicaSet scaled to zero, with `pods` still terminating."""
    w["spec"]["replicas"] = 0
    w["status"]["replicas"] = pods
    return w


DEPLOY_RS = ("Deployment", "orders")
PROJECTED = {"name": "bundle", "projected": {"sources": [{"configMap": {"name": CM}}]}}


@pytest.mark.parametrize(
    "workloads, unused",
    [
        ([], [CM, OLD_CM]),
        ([workload()], [CM, OLD_CM]),
        ([with_agent(workload())], [OLD_CM]),
        # a second intercepted workload keeps the agent its pods still mount
        ([workload(), with_agent(workload("StatefulSet", "db"))], [OLD_CM]),
        ([with_agent(workload(replicas=0))], [OLD_CM]),
        ([with_agent(workload("ReplicaSet", "legacy", replicas=0))], [OLD_CM]),
        # the Deployment's old revision, kept for `rollout undo`, runs nothing
        ([workload(), retired(with_agent(workload("ReplicaSet", "orders-1", owner=DEPLOY_RS)))],
         [CM, OLD_CM]),
        ([retired(with_agent(workload("ReplicaSet", "orders-1", owner=DEPLOY_RS)), pods=1)],
         [OLD_CM]),
        ([workload(volumes=[PROJECTED])], [OLD_CM]),
    ],
    ids=["none", "plain", "installed", "second-workload", "scaled-to-zero", "bare-replicaset",
         "old-revision", "old-revision-terminating", "projected"],
)
def test_unused_agent_config_maps(workloads: list[dict[str, Any]], unused: list[str]) -> None:
    config_maps = [
        config_map(CM, OURS),
        config_map(OLD_CM, OURS),
        config_map("innerloop-agent-mine"),  # the user's own, whatever its name
        config_map("settings", OURS),  # labelled, but not an agent ConfigMap
    ]
    assert unused_agent_config_maps(config_maps, workloads) == unused


def test_an_intercept_naming_no_image_keeps_the_installed_agents() -> None:
    """--agent-image once, then an intercept without it: the agent stays current (no rollout to
    a default image the cluster may not pull), while a named image still replaces it."""
    original = workload()
    installed = install_agent(original, AGENT_CONFIG, [8080])
    assert agent_image_for(None) == DEFAULT_AGENT_IMAGE
    assert agent_image_for(None, original) == DEFAULT_AGENT_IMAGE
    assert agent_image_for(None, installed) == AGENT_CONFIG.image
    assert agent_image_for("reg.local/py:3", installed) == "reg.local/py:3"
    kept = AgentConfig(agent_image_for(None, installed), AGENT_CONFIG.config_map,
                       image_pull_policy=AGENT_CONFIG.image_pull_policy)
    assert agent_status(installed, kept, [8080]) is AgentStatus.CURRENT
