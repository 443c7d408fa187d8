"""The kubelet's Service-link variables and the Ready pods behind a Service port, as tables."""

from __future__ import annotations

from typing import Any

import pytest
from innerloop.core import dap_launch
from innerloop.core.cluster_names import ClusterService, NamedPort, ServiceKey
from innerloop.core.errors import UserError
from innerloop.core.service_links import PodPort, env_name, ready_pod_ports, service_link_env
from innerloop.intercepts.manager import workload_ref

PAYMENTS = ClusterService(ServiceKey("shop", "payments-api"), ("10.96.0.10",),
                          (NamedPort(80, "http"), NamedPort(9090, "grpc-metrics")))
MASTER = ClusterService(ServiceKey("default", "kubernetes"), ("10.96.0.1",),
                        (NamedPort(443, "https"),))
HEADLESS = ClusterService(ServiceKey("shop", "db"), (), (NamedPort(5432),))
V6 = ClusterService(ServiceKey("shop", "ledger"), ("fd00::5",), (NamedPort(53, None, "UDP"),))
ELSEWHERE = ClusterService(ServiceKey("bank", "vault"), ("10.96.9.9",), (NamedPort(8200),))

PAYMENTS_ENV = {
    "PAYMENTS_API_SERVICE_HOST": "10.96.0.10",
    "PAYMENTS_API_SERVICE_PORT": "80",
    "PAYMENTS_API_SERVICE_PORT_HTTP": "80",
    "PAYMENTS_API_SERVICE_PORT_GRPC_METRICS": "9090",
    "PAYMENTS_API_PORT": "tcp://10.96.0.10:80",
    "PAYMENTS_API_PORT_80_TCP": "tcp://10.96.0.10:80",
    "PAYMENTS_API_PORT_80_TCP_PROTO": "tcp",
    "PAYMENTS_API_PORT_80_TCP_PORT": "80",
    "PAYMENTS_API_PORT_80_TCP_ADDR": "10.96.0.10",
    "PAYMENTS_API_PORT_9090_TCP": "tcp://10.96.0.10:9090",
    "PAYMENTS_API_PORT_9090_TCP_PROTO": "tcp",
    "PAYMENTS_API_PORT_9090_TCP_PORT": "9090",
    "PAYMENTS_API_PORT_9090_TCP_ADDR": "10.96.0.10",
}
MASTER_ENV = {
    "KUBERNETES_SERVICE_HOST": "10.96.0.1",
    "KUBERNETES_SERVICE_PORT": "443",
    "KUBERNETES_SERVICE_PORT_HTTPS": "443",
    "KUBERNETES_PORT": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
    "KUBERNETES_PORT_443_TCP_PORT": "443",
    "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1",
}
V6_ENV = {
    "LEDGER_SERVICE_HOST": "fd00::5",
    "LEDGER_SERVICE_PORT": "53",
    "LEDGER_PORT": "udp://[fd00::5]:53",
    "LEDGER_PORT_53_UDP": "udp://[fd00::5]:53",
    "LEDGER_PORT_53_UDP_PROTO": "udp",
    "LEDGER_PORT_53_UDP_PORT": "53",
    "LEDGER_PORT_53_UDP_ADDR": "fd00::5",
}


@pytest.mark.parametrize(("services", "links", "expected"), [
    ([PAYMENTS], True, PAYMENTS_ENV),
    ([PAYMENTS, MASTER], True, {**PAYMENTS_ENV, **MASTER_ENV}),
    ([PAYMENTS, MASTER], False, MASTER_ENV),  # enableServiceLinks: false keeps the master's
    ([HEADLESS, ELSEWHERE], True, {}),  # headless: none; other namespaces: none
    ([V6], True, V6_ENV),  # IPv6 in brackets, as Go's JoinHostPort writes it
    ([], True, {}),
], ids=["named-ports", "with-master", "links-off", "headless-and-elsewhere", "ipv6", "none"])
def test_service_link_env(services: list[ClusterService], links: bool,
                          expected: dict[str, str]) -> None:
    assert service_link_env(services, "shop", links) == expected


def test_a_namespace_service_named_kubernetes_wins_over_the_master() -> None:
    own = ClusterService(ServiceKey("shop", "kubernetes"), ("10.96.7.7",), (NamedPort(80),))
    env = service_link_env([MASTER, own], "shop")
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.7.7"


@pytest.mark.parametrize(("name", "expected"), [("a-b-c", "A_B_C"), ("x", "X")])
def test_env_name(name: str, expected: str) -> None:
    assert env_name(name) == expected


def endpoint(pod: str | None, ready: bool | None = True, kind: str = "Pod") -> dict[str, Any]:
    out: dict[str, Any] = {"addresses": ["198.18.1.2"], "conditions": {}}
    if ready is not None:
        out["conditions"]["ready"] = ready
    if pod is not None:
        out["targetRef"] = {"kind": kind, "name": pod}
    return out


SLICES = [
    {"ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
               {"name": "metrics", "port": 9100}],
     "endpoints": [endpoint("a"), endpoint("b", ready=False), endpoint("c", ready=None),
                   endpoint(None), endpoint("apiserver", kind="Node")]},
    {"ports": [{"name": "http", "port": 8080}], "endpoints": [endpoint("a"), endpoint("d")]},
    {"ports": None, "endpoints": [endpoint("e")]},
]


@pytest.mark.parametrize(("slices", "port_name", "expected"), [
    (SLICES, "http", [PodPort("a", 8080), PodPort("c", 8080), PodPort("d", 8080)]),
    (SLICES, "metrics", [PodPort("a", 9100), PodPort("c", 9100)]),
    (SLICES, "nope", []),
    ([{"ports": [{"port": 5432}], "endpoints": [endpoint("p")]}], None, [PodPort("p", 5432)]),
    ([{"ports": [{"port": 53, "protocol": "UDP"}], "endpoints": [endpoint("p")]}], None, []),
    ([], "http", []),
], ids=["ready-or-unknown", "other-port", "no-such-port", "unnamed", "udp", "no-slices"])
def test_ready_pod_ports(slices: list[dict[str, Any]], port_name: str | None,
                         expected: list[PodPort]) -> None:
    assert ready_pod_ports(slices, port_name) == expected


@pytest.mark.parametrize(("text", "kind", "name"), [
    ("deploy/orders", "Deployment", "orders"), ("deployment/o", "Deployment", "o"),
    ("sts/db", "StatefulSet", "db"), ("StatefulSet/db", "StatefulSet", "db"),
])
def test_workload_ref(text: str, kind: str, name: str) -> None:
    ref = workload_ref(text, "shop")
    assert (ref.kind, ref.name, ref.namespace) == (kind, name, "shop")


@pytest.mark.parametrize("text", ["orders", "pod/x", "deploy/", "cronjob/x"])
def test_workload_ref_refuses(text: str) -> None:
    with pytest.raises(UserError, match="--like wants deploy/NAME"):
        workload_ref(text, "shop")


LAUNCH = {"service": "s", "port": 1, "program": "a"}


@pytest.mark.parametrize(("extra", "expected"), [
    ({}, True), ({"clusterNetwork": False}, False), ({"clusterNetwork": True}, True)])
def test_launch_gets_the_cluster_network_unless_it_opts_out(
        extra: dict[str, Any], expected: bool) -> None:
    plan = dap_launch.plan_start(
        {"seq": 1, "type": "request", "command": "launch", "arguments": {**LAUNCH, **extra}})
    assert plan.cluster_network is expected
    assert "clusterNetwork" not in plan.arguments, "debugpy never sees it"


def test_cluster_network_must_be_a_boolean() -> None:
    with pytest.raises(UserError, match='"clusterNetwork" must be true or false'):
        dap_launch.plan_start({"seq": 1, "type": "request", "command": "launch",
                               "arguments": {**LAUNCH, "clusterNetwork": "no"}})
