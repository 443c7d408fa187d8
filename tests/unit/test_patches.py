"""Patch builder tables: sidecar in and out, Service takeover and restore, rollout progress.

The promise under test: after restore, the workload and Service deep-equal the originals.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from innerloop.core.errors import UserError
from innerloop.core.patches import (
    AGENT_CONTAINER,
    RESTORE_ANNOTATION,
    AgentConfig,
    AgentLayout,
    AgentStatus,
    agent_config_map,
    agent_config_map_name,
    agent_layout,
    agent_status,
    install_agent,
    pod_has_agent,
    pod_matches_template,
    pod_ready,
    remove_agent,
    restore_service,
    rollout_problem,
    rollout_status,
    service_takeover,
    take_over_service,
)
from k8s_manifests import container, pod, service, workload

CONFIG = AgentConfig(
    image="localhost/python3:1", config_map="innerloop-agent-0123456789", image_pull_policy="Never"
)
KINDS = ["Deployment", "StatefulSet", "ReplicaSet"]
DATA_VOLUME = {"name": "data", "emptyDir": {}}


def pod_spec(w: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = w["spec"]["template"]["spec"]
    return spec


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
    installed = install_agent(original, CONFIG, [8080])
    assert original == frozen, "builders never mutate their input"
    assert remove_agent(installed) == original
    # idempotent: installing again changes nothing
    assert install_agent(installed, CONFIG, [8080]) == installed
    assert agent_status(installed, CONFIG, [8080]) is AgentStatus.CURRENT
    assert agent_status(original, CONFIG, [8080]) is AgentStatus.ABSENT


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_agent_ports_never_collide_with_the_pod(kind: str, case: str) -> None:
    original = make(kind, case)
    installed = install_agent(original, CONFIG, [8080, 9090])
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
    installed = install_agent(workload(), CONFIG, [8080])
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
    assert agent["readinessProbe"] == {
        "httpGet": {"path": "/healthz", "port": 15409},
        "periodSeconds": 1,
    }
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
        ({"config": AgentConfig("localhost/python3:2", CONFIG.config_map)}, AgentStatus.OUTDATED),
        ({"config": AgentConfig(CONFIG.image, "innerloop-agent-ffffffffff")}, AgentStatus.OUTDATED),
        ({"ports": [8080, 9090]}, AgentStatus.OUTDATED),
        # a port already routed is no reason to roll out
        ({"ports": []}, AgentStatus.CURRENT),
    ],
)
def test_agent_status(change: dict[str, Any], status: AgentStatus) -> None:
    installed = install_agent(workload(), CONFIG, [8080])
    config = change.get("config", CONFIG)
    assert agent_status(installed, config, change.get("ports", [8080])) is status


def test_agent_status_sees_a_hand_edited_sidecar() -> None:
    installed = install_agent(workload(), CONFIG, [8080])
    agent_of(installed)["image"] = "somebody/else:1"
    assert agent_status(installed, CONFIG, [8080]) is AgentStatus.OUTDATED
    gone = install_agent(workload(), CONFIG, [8080])
    pod_spec(gone)["volumes"] = []
    assert agent_status(gone, CONFIG, [8080]) is AgentStatus.OUTDATED
    del pod_spec(gone)["volumes"]
    assert remove_agent(gone) == workload(), "a volume removed by hand is no obstacle"
    no_container = install_agent(workload(), CONFIG, [8080])
    pod_spec(no_container)["containers"] = [container()]
    assert agent_status(no_container, CONFIG, [8080]) is AgentStatus.OUTDATED


def test_api_server_defaults_on_the_sidecar_keep_it_current() -> None:
    installed = install_agent(workload(), CONFIG, [8080])
    agent = agent_of(installed)
    agent["terminationMessagePath"] = "/dev/termination-log"
    agent["readinessProbe"].update(timeoutSeconds=1, successThreshold=1, failureThreshold=3)
    agent["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] = "v1"
    assert agent_status(installed, CONFIG, [8080]) is AgentStatus.CURRENT


@pytest.mark.parametrize("kind", KINDS)
def test_upgrade_keeps_ports_and_restores_the_original(kind: str) -> None:
    original = make(kind, "existing volumes")
    v1 = install_agent(original, CONFIG, [8080])
    # the user edits their own container while the agent is in
    pod_spec(v1)["containers"][0]["image"] = "localhost/app:2"
    edited = remove_agent(v1)
    v2 = install_agent(v1, AgentConfig("localhost/python3:2", "innerloop-agent-aaaaaaaaaa"), [9090])
    assert agent_layout(v2) == AgentLayout(15400, 15409, ((15401, 8080), (15402, 9090)))
    assert agent_of(v2)["image"] == "localhost/python3:2"
    assert [c["name"] for c in pod_spec(v2)["containers"]] == ["app", "innerloop-agent"]
    assert remove_agent(v2) == edited


def test_upgrade_moves_a_port_the_app_took_since() -> None:
    v1 = install_agent(workload(), CONFIG, [8080])
    pod_spec(v1)["containers"][0]["ports"].append({"containerPort": 15401, "protocol": "TCP"})
    assert agent_layout(install_agent(v1, CONFIG, [8080])) == AgentLayout(
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
        install_agent(w, CONFIG, [8080])
    assert str(info.value).startswith(message)


def test_no_free_port_left() -> None:
    w = workload(containers=[container(ports=tuple((p, None) for p in range(15400, 65536)))])
    with pytest.raises(UserError, match="no free port for the innerloop agent"):
        install_agent(w, CONFIG, [8080])


def test_config_map() -> None:
    agent = b"PK\x03\x04 zipapp bytes"
    name = agent_config_map_name(agent)
    assert name.startswith("innerloop-agent-") and len(name) == len("innerloop-agent-") + 12
    assert agent_config_map_name(agent + b"!") != name
    cm = agent_config_map("shop", agent)
    assert cm["metadata"]["name"] == name and cm["metadata"]["namespace"] == "shop"
    assert base64.b64decode(cm["binaryData"]["agent.pyz"]) == agent


# --- Service ------------------------------------------------------------------------------------

MULTI = [
    {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"},
    {"name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": 9090},
]


@pytest.mark.parametrize(
    "ports, label, original",
    [
        ([{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}], "80/http", 8080),
        (MULTI, "80/http", "http"),
        (MULTI, "9090/metrics", 9090),
        ([{"port": 80, "protocol": "TCP"}], "80", None),
    ],
)
def test_take_over_and_restore_service(
    ports: list[dict[str, Any]], label: str, original: Any
) -> None:
    svc = service(ports=copy.deepcopy(ports), annotations={"owner": "shop"})
    frozen = copy.deepcopy(svc)
    taken = take_over_service(svc, label, 15401)
    assert svc == frozen
    [entry] = [
        p
        for p in taken["spec"]["ports"]
        if (f"{p['port']}/{p['name']}" if p.get("name") else str(p["port"])) == label
    ]
    assert entry["targetPort"] == 15401
    assert service_takeover(taken) == {label: original}
    # taking over again (a re-claim after reconnect) keeps the original
    again = take_over_service(taken, label, 15402)
    assert service_takeover(again) == {label: original}
    assert restore_service(again) == svc
    assert restore_service(svc) == svc
    assert service_takeover(svc) == {}


def test_restore_one_port_keeps_the_other() -> None:
    svc = service(ports=copy.deepcopy(MULTI))
    both = take_over_service(take_over_service(svc, "80/http", 15401), "9090/metrics", 15402)
    one = restore_service(both, ["80/http"])
    assert service_takeover(one) == {"9090/metrics": 9090}
    assert one["spec"]["ports"][0]["targetPort"] == "http"
    assert one["spec"]["ports"][1]["targetPort"] == 15402
    assert restore_service(one, ["9090/metrics"]) == svc


def test_take_over_unknown_port() -> None:
    with pytest.raises(UserError, match="service 'orders' has no port 81"):
        take_over_service(service(), "81", 15401)


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
    installed = install_agent(w, CONFIG, app_ports)
    assert remove_agent(installed) == w
    assert install_agent(installed, CONFIG, app_ports) == installed
    layout = agent_layout(installed)
    assert layout is not None and layout.app_ports() == set(app_ports)


@given(
    st.lists(st.sampled_from(["80/http", "9090/metrics"]), min_size=1, max_size=4),
    st.integers(15400, 15500),
)
def test_service_round_trip_generated(labels: list[str], listen: int) -> None:
    svc = service(ports=copy.deepcopy(MULTI))
    taken = svc
    for label in labels:
        taken = take_over_service(taken, label, listen)
    assert restore_service(taken) == svc


# --- rollout ------------------------------------------------------------------------------------


def with_status(w: dict[str, Any], generation: int = 1, **status: Any) -> dict[str, Any]:
    w = copy.deepcopy(w)
    w["metadata"]["generation"] = generation
    w["status"] = {"observedGeneration": 1, **status}
    return w


DEPLOY = workload(replicas=2)


@pytest.mark.parametrize(
    "w, done, message",
    [
        (
            with_status(DEPLOY, generation=2),
            False,
            "waiting for the Deployment controller to see the change",
        ),
        (with_status(DEPLOY, updatedReplicas=1, replicas=2), False, "1 of 2 replicas updated"),
        (
            with_status(DEPLOY, updatedReplicas=2, replicas=3),
            False,
            "1 old replicas pending termination",
        ),
        (
            with_status(DEPLOY, updatedReplicas=2, replicas=2, availableReplicas=1),
            False,
            "1 of 2 updated replicas available",
        ),
        (
            with_status(
                DEPLOY,
                updatedReplicas=2,
                replicas=2,
                availableReplicas=2,
                conditions=[{"type": "Progressing", "reason": "NewReplicaSetAvailable"}],
            ),
            True,
            "2 replicas updated and available",
        ),
    ],
)
def test_deployment_rollout(w: dict[str, Any], done: bool, message: str) -> None:
    status = rollout_status(w, [])
    assert (status.done, status.message, status.replace) == (done, message, ())


def test_deployment_rollout_deadline() -> None:
    w = with_status(
        DEPLOY,
        conditions=[
            {
                "type": "Progressing",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "orders-1" has timed out',
            }
        ],
    )
    with pytest.raises(
        UserError,
        match="deployment/orders rollout exceeded its progress "
        'deadline: ReplicaSet "orders-1" has timed out',
    ):
        rollout_status(w, [])


STS = workload("StatefulSet", "db", replicas=2)


@pytest.mark.parametrize(
    "w, done, message",
    [
        (with_status(STS, readyReplicas=1), False, "1 of 2 replicas ready"),
        (
            with_status(
                STS, readyReplicas=2, updatedReplicas=1, currentRevision="a", updateRevision="b"
            ),
            False,
            "1 of 2 replicas updated",
        ),
        (
            with_status(STS, readyReplicas=2, currentRevision="b", updateRevision="b"),
            True,
            "2 replicas updated and ready",
        ),
    ],
)
def test_statefulset_rollout(w: dict[str, Any], done: bool, message: str) -> None:
    status = rollout_status(w, [])
    assert (status.done, status.message) == (done, message)


def _pods(
    w: dict[str, Any], current: int, stale: int, ready: bool = True, terminating: int = 0
) -> list[dict[str, Any]]:
    new = pod_spec(w)["containers"]
    old = pod_spec(remove_agent(w))["containers"]
    out = [
        pod(f"p-new-{i}", ("ReplicaSet", "legacy"), containers=new, ready=ready)
        for i in range(current)
    ]
    out += [pod(f"p-old-{i}", ("ReplicaSet", "legacy"), containers=old) for i in range(stale)]
    out += [
        pod(
            f"p-gone-{i}",
            ("ReplicaSet", "legacy"),
            containers=old,
            deletionTimestamp="2026-01-01T00:00:00Z",
        )
        for i in range(terminating)
    ]
    return out


RS = with_status(install_agent(workload("ReplicaSet", "legacy", replicas=2), CONFIG, [8080]))
ON_DELETE = copy.deepcopy(with_status(install_agent(STS, CONFIG, [8080])))
ON_DELETE["spec"]["updateStrategy"] = {"type": "OnDelete"}


@pytest.mark.parametrize("w", [RS, ON_DELETE], ids=["ReplicaSet", "OnDelete"])
@pytest.mark.parametrize(
    "pods, done, message, replace",
    [
        ((0, 2), False, "replacing pod p-old-0 (2 to go)", ("p-old-0",)),
        # one replaced; the other waits until the replacement is Ready
        ((1, 1), False, "replacing pod p-old-0 (1 to go)", ("p-old-0",)),
        ((1, 0, True, 1), False, "1 of 2 replicas ready", ()),
        ((2, 0, False), False, "0 of 2 replicas ready", ()),
        ((2, 0), True, "2 replicas updated and ready", ()),
    ],
)
def test_manual_rollout(
    w: dict[str, Any], pods: tuple[Any, ...], done: bool, message: str, replace: tuple[str, ...]
) -> None:
    status = rollout_status(w, _pods(w, *pods))
    assert (status.done, status.message, status.replace) == (done, message, replace)


def test_manual_rollout_waits_for_capacity_before_replacing() -> None:
    pods = _pods(RS, 1, 1, ready=False)
    status = rollout_status(RS, pods)
    assert (status.done, status.replace) == (False, ())
    assert status.message == "1 replicas to replace; waiting for pods to be ready"
    # a replica short (one is still terminating): wait as well
    assert rollout_status(RS, _pods(RS, 0, 1, terminating=1)).replace == ()


def test_pod_predicates() -> None:
    installed = install_agent(workload(), CONFIG, [8080])
    with_agent = pod("a", ("ReplicaSet", "x"), containers=pod_spec(installed)["containers"])
    assert pod_has_agent(with_agent) and not pod_has_agent(pod("b", None))
    assert pod_matches_template(with_agent, installed)
    assert not pod_matches_template(with_agent, workload())
    assert pod_ready(with_agent)
    assert not pod_ready(pod("c", None, ready=False))
    assert not pod_ready(pod("d", None, deletionTimestamp="2026-01-01T00:00:00Z"))


# --- why a rollout cannot finish ----------------------------------------------------------------

INSTALLED = install_agent(workload(), CONFIG, [8080])


def _new_pod(
    statuses: list[dict[str, Any]], init: list[dict[str, Any]] | None = None, **status: Any
) -> dict[str, Any]:
    p = pod(
        "orders-new-1",
        ("ReplicaSet", "orders-1"),
        containers=pod_spec(INSTALLED)["containers"],
        ready=False,
    )
    p["status"]["containerStatuses"] = statuses
    if init is not None:
        p["status"]["initContainerStatuses"] = init
    p["status"].update(status)
    return p


AGENT_CRASH = {
    "name": "innerloop-agent",
    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
    "lastState": {
        "terminated": {
            "exitCode": 128,
            "reason": "StartError",
            "message": 'exec: "python3": executable file not found',
        }
    },
}


@pytest.mark.parametrize(
    "p, expected",
    [
        (
            _new_pod([AGENT_CRASH]),
            (
                "pod orders-new-1 container innerloop-agent: CrashLoopBackOff; exited 128: exec: "
                '"python3": executable file not found (the agent image must run python3 >= 3.10; see '
                "--agent-image)"
            ),
        ),
        (
            _new_pod(
                [
                    {
                        "name": "innerloop-agent",
                        "state": {"terminated": {"exitCode": 1, "reason": "Error"}},
                    }
                ]
            ),
            (
                "pod orders-new-1 container innerloop-agent: exited 1: Error (the agent image must run "
                "python3 >= 3.10; see --agent-image)"
            ),
        ),
        (
            _new_pod(
                [
                    {
                        "name": "app",
                        "state": {
                            "waiting": {
                                "reason": "ErrImageNeverPull",
                                "message": "image not present",
                            }
                        },
                    }
                ]
            ),
            "pod orders-new-1 container app: ErrImageNeverPull: image not present",
        ),
        (
            _new_pod(
                [],
                init=[
                    {"name": "init", "state": {"waiting": {"reason": "CreateContainerConfigError"}}}
                ],
            ),
            "pod orders-new-1 container init: CreateContainerConfigError",
        ),
        (
            _new_pod(
                [],
                conditions=[
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/1 nodes: Insufficient cpu",
                    }
                ],
            ),
            "pod orders-new-1 cannot be scheduled: 0/1 nodes: Insufficient cpu",
        ),
    ],
)
def test_rollout_problem(p: dict[str, Any], expected: str) -> None:
    assert rollout_problem(INSTALLED, [p]) == expected


def test_rollout_problem_ignores_what_is_not_this_rollouts() -> None:
    starting = _new_pod(
        [
            {"name": "app", "state": {"waiting": {"reason": "ContainerCreating"}}},
            {"name": "innerloop-agent", "state": {"running": {}}},
        ]
    )
    # an app container that exited and restarts is the app's business, not a rollout failure
    restarted = _new_pod(
        [{"name": "app", "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 137}}}]
    )
    old = _new_pod([AGENT_CRASH])
    old["spec"]["containers"] = pod_spec(workload())["containers"]
    leaving = _new_pod([AGENT_CRASH])
    leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert rollout_problem(INSTALLED, [starting, restarted, old, leaving]) is None
