"""`--port` as a new user reads docs/usage.md: a bare number is the local port, what follows a
colon is a Service port (never a targetPort), and every choice left to innerloop is said in the
first progress line (issue 11)."""

from __future__ import annotations

import pytest
from innerloop.core.errors import UserError
from innerloop.core.request import PortSpec
from innerloop.core.targets import first_line, resolve_target, select_service_port
from k8s_manifests import container, pod, service, workload

ONE_PORT = [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]
TWO_PORTS = [
    {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
    {"name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": 9091},
]


def line(ports: list[dict[str, object]], text: str) -> str:
    svc = service(ports=ports)
    spec = PortSpec.parse(text)
    deploy = workload(containers=[container(ports=((8080, "http"), (9091, None)))])
    rs = workload("ReplicaSet", "orders-5d8f", owner=("Deployment", "orders"))
    pods = [pod("orders-5d8f-a", ("ReplicaSet", "orders-5d8f"))]
    target = resolve_target(svc, spec, pods, [deploy, rs])
    return first_line(target, svc, spec, "python:3.12-slim")


def test_a_bare_number_is_the_local_port_on_a_one_port_service() -> None:
    assert PortSpec.parse("18197") == PortSpec(None, 18197)
    assert line(ONE_PORT, "18197").startswith(
        "orders.shop:80/http (the Service's only port) → deployment/orders container 'app' "
        "port 8080; locally 127.0.0.1:18197;")


def test_a_bare_number_picks_among_several_ports_by_number_then_targetport() -> None:
    svc = service(ports=TWO_PORTS)
    assert select_service_port(svc, None, 9090).name == "metrics"
    assert select_service_port(svc, None, 8080).name == "http"
    assert "(its targetPort is the local port 8080)" in line(TWO_PORTS, "8080")
    with pytest.raises(UserError, match="has 2 ports; its ports are 80/http, 9090/metrics; "
                                        "pick one with --port"):
        select_service_port(svc, None, 18197)


def test_a_targetport_after_the_colon_is_refused_naming_the_service_port() -> None:
    with pytest.raises(UserError) as info:
        select_service_port(service(ports=ONE_PORT), 8080, 18080)
    assert str(info.value) == (
        "service 'orders' has no port 8080; 8080 is the targetPort of its port 80/http: after "
        "the colon goes the Service port, e.g. --port LOCAL:http")


def test_a_name_says_the_local_port_it_picked_and_the_agent_image() -> None:
    said = line(ONE_PORT, "http")
    assert "locally 127.0.0.1:8080 (the container's port; --port LOCAL:SERVICE_PORT picks " \
           "another)" in said
    assert said.endswith("agent image python:3.12-slim (--agent-image or \"agentImage\" to "
                         "change)")
    assert "only port" not in said, "named by the user: no reason given"
