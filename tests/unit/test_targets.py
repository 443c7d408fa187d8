"""Target resolution tables: Service → port → workload → container, and every refusal's line."""

from __future__ import annotations

import json
from typing import Any

import pytest
from innerloop.core.agent_patch import AgentConfig, install_agent
from innerloop.core.errors import UserError
from innerloop.core.manifest import RESTORE_ANNOTATION
from innerloop.core.service_patch import take_over_service
from innerloop.core.targets import (
    PortSpec,
    ServicePort,
    ServiceSummary,
    Target,
    WorkloadRef,
    find_container,
    find_workload,
    label_selector,
    resolve_target,
    select_service_port,
    service_ports,
    service_selector,
    summarize_services,
    workload_selector,
)
from k8s_manifests import container, pod, service, workload

TWO_PORTS = [
    {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"},
    {"name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": 9090},
]


@pytest.mark.parametrize(
    "text, service_port, local_port",
    [
        ("8080", None, 8080),
        (" 8080 ", None, 8080),
        ("http", "http", None),
        ("8080:http", "http", 8080),
        ("3000:80", 80, 3000),
    ],
)
def test_port_spec_parse(text: str, service_port: object, local_port: object) -> None:
    assert PortSpec.parse(text) == PortSpec(service_port, local_port)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "bad --port ''"),
        ("x:http", "expected LOCAL_PORT[:SERVICE_PORT]"),
        ("8080:", "expected LOCAL_PORT[:SERVICE_PORT]"),
        (":80", "expected LOCAL_PORT[:SERVICE_PORT]"),
        ("0", "0 is not a TCP port"),
        ("70000:http", "70000 is not a TCP port"),
    ],
)
def test_port_spec_refuses(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        PortSpec.parse(text)


@pytest.mark.parametrize(
    "ports, wanted, expected",
    [
        (
            [{"port": 80, "protocol": "TCP", "targetPort": 8080}],
            None,
            ServicePort(None, 80, "TCP", 8080),
        ),
        (TWO_PORTS, 9090, ServicePort("metrics", 9090, "TCP", 9090)),
        (TWO_PORTS, "http", ServicePort("http", 80, "TCP", "http")),
        # the same number for TCP and UDP: TCP wins
        (
            [
                {"name": "dns-udp", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
            ],
            53,
            ServicePort("dns-tcp", 53, "TCP", 53),
        ),
        # a port without targetPort targets its own number
        ([{"port": 80, "protocol": "TCP"}], 80, ServicePort(None, 80, "TCP", 80)),
    ],
)
def test_select_service_port(
    ports: list[dict[str, object]], wanted: object, expected: ServicePort
) -> None:
    assert select_service_port(service(ports=ports), wanted) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "ports, wanted, message",
    [
        (TWO_PORTS, 8080, "service 'orders' has no port 8080; its ports are 80/http, 9090/metrics"),
        (
            TWO_PORTS,
            "grpc",
            "service 'orders' has no port grpc; its ports are 80/http, 9090/metrics",
        ),
        (
            TWO_PORTS,
            None,
            "service 'orders' has 2 ports; its ports are 80/http, 9090/metrics; pick one with --port",
        ),
        ([], None, "service 'orders' has 0 ports; its ports are none; pick one with --port"),
        (
            [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53}],
            53,
            "service 'orders' port 53 is UDP; innerloop intercepts TCP only",
        ),
        (
            [
                {"name": "a", "port": 80, "protocol": "TCP", "targetPort": 8080},
                {"name": "b", "port": 81, "protocol": "TCP", "targetPort": 8080},
            ],
            8080,
            ("service 'orders' has no port 8080; 8080 is the targetPort of its port 80/a: after "
             "the colon goes the Service port, e.g. --port LOCAL:a"),
        ),
    ],
)
def test_select_service_port_refuses(
    ports: list[dict[str, object]], wanted: object, message: str
) -> None:
    with pytest.raises(UserError) as info:
        select_service_port(service(ports=ports), wanted)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)


def test_taken_over_service_resolves_to_its_original_ports() -> None:
    record = {
        "v": 1,
        "ports": [{"port": "80/http", "targetPort": "http"}, {"port": "81", "targetPort": None}],
    }
    svc = service(
        ports=[
            {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 15401},
            {"port": 81, "protocol": "TCP", "targetPort": 15402},
            {"name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": 9090},
        ],
        annotations={RESTORE_ANNOTATION: json.dumps(record)},
    )
    assert service_ports(svc) == [
        ServicePort("http", 80, "TCP", "http"),
        ServicePort(None, 81, "TCP", 81),
        ServicePort("metrics", 9090, "TCP", 9090),
    ]


def test_service_without_selector_is_refused() -> None:
    with pytest.raises(UserError, match="service 'orders' has no selector"):
        service_selector(service(selector={}))
    assert label_selector({"b": "2", "a": "1"}) == "a=1,b=2"


DEPLOY = workload("Deployment", "orders")
RS = workload("ReplicaSet", "orders-5d8f", owner=("Deployment", "orders"))
RS_OLD = workload("ReplicaSet", "orders-77aa", owner=("Deployment", "orders"))
STS = workload("StatefulSet", "db")
BARE_RS = workload("ReplicaSet", "legacy")
ALL = [DEPLOY, RS, RS_OLD, STS, BARE_RS]


@pytest.mark.parametrize(
    "pods, expected",
    [
        (
            [
                pod("orders-5d8f-a", ("ReplicaSet", "orders-5d8f")),
                pod("orders-5d8f-b", ("ReplicaSet", "orders-5d8f")),
            ],
            ("Deployment", "orders"),
        ),
        # mid-rollout: pods of two ReplicaSets of one Deployment
        (
            [
                pod("orders-5d8f-a", ("ReplicaSet", "orders-5d8f")),
                pod("orders-77aa-b", ("ReplicaSet", "orders-77aa")),
            ],
            ("Deployment", "orders"),
        ),
        ([pod("db-0", ("StatefulSet", "db"))], ("StatefulSet", "db")),
        ([pod("legacy-x", ("ReplicaSet", "legacy"))], ("ReplicaSet", "legacy")),
        # pods the selector does not pick are not looked at
        (
            [pod("db-0", ("StatefulSet", "db")), pod("other", None, labels={"app": "x"})],
            ("StatefulSet", "db"),
        ),
    ],
)
def test_find_workload(pods: list[dict[str, object]], expected: tuple[str, str]) -> None:
    w = find_workload(service(), pods, ALL)
    assert (w["kind"], w["metadata"]["name"]) == expected


def test_find_workload_with_no_pods_matches_pod_templates() -> None:
    scaled_to_zero = workload("StatefulSet", "db", replicas=0, labels={"app": "db"})
    w = find_workload(service(selector={"app": "db"}), [], [DEPLOY, RS, scaled_to_zero])
    assert w is scaled_to_zero
    # a Deployment's own ReplicaSets do not count twice
    assert find_workload(service(), [], [DEPLOY, RS]) is DEPLOY


@pytest.mark.parametrize(
    "pods, workloads, message",
    [
        (
            [pod("orders", None)],
            ALL,
            "pod 'orders' has no controller (a bare Pod); innerloop patches a workload's pod template",
        ),
        (
            [
                {
                    **pod("orders", None),
                    "metadata": {
                        "name": "orders",
                        "labels": {"app": "orders"},
                        "ownerReferences": [{"kind": "ReplicaSet", "name": "legacy"}],
                    },
                }
            ],
            ALL,
            "pod 'orders' has no controller (a bare Pod)",
        ),
        (
            [pod("agent-x", ("DaemonSet", "agent"))],
            ALL,
            "pod 'agent-x' belongs to daemonset/agent; innerloop supports Deployments, StatefulSets",
        ),
        (
            [
                pod("db-0", ("StatefulSet", "db")),
                pod("orders-5d8f-a", ("ReplicaSet", "orders-5d8f")),
            ],
            ALL,
            (
                "service 'orders' selects pods of several workloads (deployment/orders, "
                "statefulset/db)"
            ),
        ),
        (
            [],
            [workload("StatefulSet", "db", labels={"app": "db"})],
            "service 'orders' selects no pods and no workload (app=orders)",
        ),
        (
            [pod("orders-5d8f-a", ("ReplicaSet", "orders-5d8f"))],
            [RS],
            "deployment/orders behind service 'orders' was not found",
        ),
    ],
)
def test_find_workload_refuses(
    pods: list[dict[str, object]], workloads: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(UserError) as info:
        find_workload(service(), pods, workloads)
    assert str(info.value).startswith(message)


SIDECAR = container("sidecar", ports=((9901, "admin"), (8125, None)))
AGENT = container("innerloop-agent", ports=((15401, None),))


@pytest.mark.parametrize(
    "containers, target_port, expected",
    [
        ([container()], "http", ("app", 8080)),
        ([container()], 8080, ("app", 8080)),
        ([SIDECAR, container()], "http", ("app", 8080)),
        ([container(), SIDECAR], 8125, ("sidecar", 8125)),
        ([container(), SIDECAR], "admin", ("sidecar", 9901)),
        # undeclared port, one app container: it must be that one (the agent does not count)
        ([container(ports=()), AGENT], 5000, ("app", 5000)),
        # a UDP port of the same number is not the one
        ([container("dns", ports=()), container("app")], 8080, ("app", 8080)),
    ],
)
def test_find_container(
    containers: list[dict[str, object]], target_port: object, expected: tuple[str, int]
) -> None:
    w = workload(containers=containers)
    assert find_container(w, target_port) == expected  # type: ignore[arg-type]


def test_find_container_skips_udp_ports() -> None:
    udp = container("app", ports=())
    udp["ports"] = [{"containerPort": 8080, "protocol": "UDP", "name": "http"}]
    w = workload(containers=[udp, container("web", ports=((8080, "http"),))])
    assert find_container(w, "http") == ("web", 8080)


@pytest.mark.parametrize(
    "containers, target_port, message",
    [
        (
            [container(), SIDECAR],
            "grpc",
            (
                "no container of deployment/orders has a port named 'grpc'; its containers declare "
                "app: 8080/http; sidecar: 9901/admin, 8125"
            ),
        ),
        (
            [container(ports=()), SIDECAR],
            5000,
            (
                "no container of deployment/orders declares port 5000 and it has several containers "
                "(app, sidecar)"
            ),
        ),
    ],
)
def test_find_container_refuses(
    containers: list[dict[str, object]], target_port: object, message: str
) -> None:
    with pytest.raises(UserError) as info:
        find_container(workload(containers=containers), target_port)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)


def test_resolve_target_end_to_end() -> None:
    svc = service(ports=TWO_PORTS)
    pods = [pod("orders-5d8f-a", ("ReplicaSet", "orders-5d8f"))]
    assert resolve_target(svc, PortSpec.parse("http"), pods, ALL) == Target(
        namespace="shop",
        service="orders",
        service_port=ServicePort("http", 80, "TCP", "http"),
        workload=WorkloadRef("Deployment", "orders", "shop"),
        container="app",
        container_port=8080,
        local_port=8080,
    )
    target = resolve_target(svc, PortSpec.parse("3000:http"), pods, ALL)
    assert (target.local_port, target.container_port) == (3000, 8080)
    assert str(target.workload) == "deployment/orders"


@pytest.mark.parametrize(
    "selector, expected",
    [
        ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
        (
            {
                "matchLabels": {"app": "x"},
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["web", "api"]},
                    {"key": "env", "operator": "NotIn", "values": ["dev"]},
                    {"key": "owner", "operator": "Exists"},
                    {"key": "canary", "operator": "DoesNotExist"},
                ],
            },
            "app=x,tier in (api,web),env notin (dev),owner,!canary",
        ),
        ({"matchExpressions": [{"key": "k", "operator": "Exists"}]}, "k"),
    ],
)
def test_workload_selector(selector: dict[str, Any], expected: str) -> None:
    w = workload()
    w["spec"]["selector"] = selector
    assert workload_selector(w) == expected


def test_workload_selector_refuses_unknown_operators() -> None:
    w = workload()
    w["spec"]["selector"] = {"matchExpressions": [{"key": "k", "operator": "Near"}]}
    with pytest.raises(UserError, match="deployment/orders: unknown selector operator 'Near'"):
        workload_selector(w)


def test_summarize_services() -> None:
    installed = install_agent(DEPLOY, AgentConfig("img", "innerloop-agent-x"), [8080])
    taken = take_over_service(service(ports=TWO_PORTS), "80/http", 15401)
    taken["metadata"]["name"] = "orders"
    manual = service("manual", selector={})
    db = service("db", selector={"app": "db"})
    summaries = summarize_services([taken, manual, db], [installed, RS])
    assert summaries == [
        ServiceSummary("db", (ServicePort("http", 80, "TCP", 8080),), None, False, ()),
        ServiceSummary("manual", (ServicePort("http", 80, "TCP", 8080),), None, False, ()),
        ServiceSummary(
            "orders",
            (ServicePort("http", 80, "TCP", "http"), ServicePort("metrics", 9090, "TCP", 9090)),
            WorkloadRef("Deployment", "orders", "shop"),
            True,
            ("80/http",),
            tunnel_port=15400,
            selector="app=orders",
            routes=((15401, "80/http"),),
        ),
    ]
    assert summarize_services([service()], [DEPLOY])[0].agent is False
