"""Cluster names as a pod of the workload's namespace sees them, and the control-socket codec."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from innerloop.core.cluster_names import (
    MAX_LINE,
    Cluster,
    ClusterNames,
    ClusterService,
    ControlMessageError,
    LocalAddress,
    NamedPort,
    NotCluster,
    NotFound,
    ResolveRequest,
    ResolveResult,
    ServiceKey,
    encode_error,
    encode_request,
    encode_result,
    parse_request,
    parse_result,
)

PAYMENTS = ServiceKey("shop", "payments")
REDIS = ServiceKey("shop", "redis")
LEDGER = ServiceKey("bank", "ledger")
SERVICES = [
    ClusterService(PAYMENTS, ("10.96.0.10",), (NamedPort(80, "http"), NamedPort(9090, "metrics"))),
    ClusterService(REDIS, (), (NamedPort(6379),)),  # headless
    ClusterService(LEDGER, ("10.96.5.5", "fd00:10:96::5"), (NamedPort(8080),)),
    ClusterService(ServiceKey("shop", "dns"), ("10.96.0.53",), (NamedPort(53, None, "UDP"),)),
]
NAMES = ClusterNames(SERVICES, namespace="shop", namespaces=["empty"])


@pytest.mark.parametrize(
    "host, port, answer",
    [
        # the workload's namespace: short names
        ("payments", 80, Cluster(PAYMENTS, 80)),
        ("PAYMENTS", 9090, Cluster(PAYMENTS, 9090)),
        ("payments.", 80, Cluster(PAYMENTS, 80)),
        ("redis", 6379, Cluster(REDIS, 6379)),
        # svc.ns, svc.ns.svc, svc.ns.svc.<domain>, any namespace
        ("payments.shop", 80, Cluster(PAYMENTS, 80)),
        ("payments.shop.svc", 80, Cluster(PAYMENTS, 80)),
        ("payments.shop.svc.cluster.local", 80, Cluster(PAYMENTS, 80)),
        ("Payments.Shop.SVC.Cluster.Local.", 80, Cluster(PAYMENTS, 80)),
        ("ledger.bank", 8080, Cluster(LEDGER, 8080)),
        ("ledger.bank.svc.cluster.local", 8080, Cluster(LEDGER, 8080)),
        # ClusterIPs, v4 and v6 (and v4-mapped)
        ("10.96.0.10", 80, Cluster(PAYMENTS, 80)),
        ("fd00:10:96::5", 8080, Cluster(LEDGER, 8080)),
        ("FD00:10:96:0::5", 8080, Cluster(LEDGER, 8080)),
        ("::ffff:10.96.5.5", 8080, Cluster(LEDGER, 8080)),
        # asked without a port (gethostbyname)
        ("payments", None, Cluster(PAYMENTS, None)),
        ("10.96.0.10", None, Cluster(PAYMENTS, None)),
        # not the cluster's: resolve as before
        ("localhost", 80, NotCluster()),
        ("ledger", 8080, NotCluster()),  # not in the workload's namespace
        ("example.com", 443, NotCluster()),
        ("www.example.com", 443, NotCluster()),
        ("payments.shop.svc.cluster", 80, NotCluster()),
        ("cluster", 80, NotCluster()),
        ("127.0.0.1", 80, NotCluster()),
        ("10.96.0.11", 80, NotCluster()),
        ("::1", 80, NotCluster()),
        ("", 80, NotCluster()),
    ],
)
def test_lookup(host: str, port: int | None, answer: object) -> None:
    assert NAMES.lookup(host, port) == answer


@pytest.mark.parametrize(
    "host, port, reason",
    [
        ("nosuch.shop", 80, "no service 'nosuch' in namespace 'shop'"),
        ("nosuch.empty", 80, "no service 'nosuch' in namespace 'empty'"),
        ("nosuch.shop.svc", 80, "no service 'nosuch'"),
        ("nosuch.shop.svc.cluster.local", 80, "no service 'nosuch'"),
        ("payments.elsewhere.svc.cluster.local", 80, "in namespace 'elsewhere'"),
        ("shop.svc", 80, "is not <service>.<namespace>.svc.cluster.local"),
        ("shop.svc.cluster.local", 80, "is not <service>.<namespace>.svc.cluster.local"),
        ("web-0.nginx.shop.svc.cluster.local", 80, "is not <service>.<namespace>.svc"),
        ("1-2-3-4.shop.pod.cluster.local", 80, "in the cluster's domain but names no Service"),
        ("svc.cluster.local", 80, "in the cluster's domain"),
        ("cluster.local", 80, "in the cluster's domain"),
        ("payments", 81, "'payments' has no TCP port 81; its ports: 80/TCP, 9090/TCP"),
        ("payments.shop.svc.cluster.local", 81, "has no TCP port 81"),
        ("10.96.0.10", 81, "has no TCP port 81"),
        ("dns", 53, "'dns' has no TCP port 53; its ports: 53/UDP"),
    ],
)
def test_lookup_not_found(host: str, port: int, reason: str) -> None:
    answer = NAMES.lookup(host, port)
    assert isinstance(answer, NotFound)
    assert reason in answer.reason


def test_another_cluster_domain() -> None:
    names = ClusterNames(SERVICES, namespace="shop", domain="Corp.Example.")
    assert names.lookup("payments.shop.svc.corp.example", 80) == Cluster(PAYMENTS, 80)
    assert names.lookup("payments.shop.svc.cluster.local", 80) == NotCluster()  # not this one's
    assert isinstance(names.lookup("x.corp.example", 80), NotFound)
    assert names.lookup("x.example", 80) == NotCluster()


def test_another_namespace_makes_the_short_names() -> None:
    names = ClusterNames(SERVICES, namespace="bank")
    assert names.lookup("ledger", 8080) == Cluster(LEDGER, 8080)
    assert names.lookup("payments", 80) == NotCluster()
    assert names.lookup("payments.shop", 80) == Cluster(PAYMENTS, 80)


def test_a_service_without_ports_has_none_to_offer() -> None:
    names = ClusterNames([ClusterService(PAYMENTS, (), ())], namespace="shop")
    answer = names.lookup("payments", 80)
    assert isinstance(answer, NotFound) and answer.reason.endswith("its ports: none")


@pytest.mark.parametrize(
    "spec, ips, ports",
    [
        ({"clusterIP": "10.0.0.1", "ports": [{"port": 80, "name": "http", "protocol": "TCP"}]},
         ("10.0.0.1",), (NamedPort(80, "http"),)),
        ({"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1", "fd00::1"],
          "ports": [{"port": 53, "protocol": "UDP"}]},
         ("10.0.0.1", "fd00::1"), (NamedPort(53, None, "UDP"),)),
        ({"clusterIP": "None", "ports": [{"port": "6379", "name": ""}]}, (), (NamedPort(6379),)),
        ({"type": "ExternalName", "externalName": "db.example.com"}, (), ()),
    ],
)
def test_service_from_manifest(spec: dict[str, object], ips: tuple[str, ...],
                               ports: tuple[NamedPort, ...]) -> None:
    manifest = {"metadata": {"name": "payments", "namespace": "shop"}, "spec": spec}
    assert ClusterService.from_manifest(manifest) == ClusterService(PAYMENTS, ips, ports)


def test_dns_name() -> None:
    assert PAYMENTS.dns_name() == "payments.shop.svc.cluster.local"
    assert PAYMENTS.dns_name("corp.example") == "payments.shop.svc.corp.example"


# ---- codec ---------------------------------------------------------------------------------

def test_the_wire_is_one_json_object_per_line() -> None:
    assert encode_request(ResolveRequest("payments", 80)) == (
        b'{"op":"resolve","host":"payments","port":80}\n')
    assert encode_result(LocalAddress("127.0.0.1", 41234)) == (
        b'{"ok":true,"host":"127.0.0.1","port":41234}\n')
    assert encode_result(NotFound("why")) == b'{"ok":false,"error":"noname"}\n'
    assert encode_result(NotCluster()) == b'{"ok":false,"error":"notcluster"}\n'
    assert json.loads(encode_error("bad")) == {"ok": False, "error": "failed", "message": "bad"}


@pytest.mark.parametrize(
    "line, message",
    [
        (b"", "not a JSON line"),
        (b"{", "not a JSON line"),
        (b"\xff\n", "not a JSON line"),
        (b"[" * 2000 + b"]" * 2000, "not a JSON line"),
        (b" " * MAX_LINE + b"{}", f"longer than {MAX_LINE} bytes"),
        (b"[]", "not a JSON object"),
        (b'{"host": "x", "port": 1}', "unknown op None"),
        (b'{"op": "path", "path": "/etc/x"}', "unknown op 'path'"),
        (b'{"op": "resolve", "port": 1}', "'host' must be a non-empty string"),
        (b'{"op": "resolve", "host": "", "port": 1}', "'host' must be"),
        (b'{"op": "resolve", "host": 7, "port": 1}', "'host' must be"),
        (b'{"op": "resolve", "host": "x", "port": "80"}', "'port' must be an integer"),
        (b'{"op": "resolve", "host": "x", "port": true}', "'port' must be an integer"),
        (b'{"op": "resolve", "host": "x", "port": 65536}', "'port' must be an integer"),
        (b'{"op": "resolve", "host": "x", "port": -1}', "'port' must be an integer"),
    ],
)
def test_parse_request_refuses(line: bytes, message: str) -> None:
    with pytest.raises(ControlMessageError, match=message.replace("(", r"\(")):
        parse_request(line)


def test_parse_request_accepts_a_missing_port_and_ignores_unknown_keys() -> None:
    assert parse_request(b'{"op":"resolve","host":"x"}') == ResolveRequest("x", None)
    assert parse_request(b'{"op":"resolve","host":"x","port":1,"v":2}\n') == ResolveRequest("x", 1)


@pytest.mark.parametrize(
    "line, message",
    [
        (b'{"ok": true, "host": "127.0.0.1"}', "an ok reply needs"),
        (b'{"ok": true, "host": "", "port": 1}', "an ok reply needs"),
        (b'{"ok": true, "host": "h", "port": 1.5}', "an ok reply needs"),
        (b'{"ok": false, "error": "failed", "message": "boom"}', "the server failed: 'boom'"),
        (b'{"ok": false, "error": "other"}', "the server failed: 'other'"),
        (b'{"ok": 1, "host": "h", "port": 1}', "the server failed: None"),
        (b"null", "not a JSON object"),
    ],
)
def test_parse_result_refuses(line: bytes, message: str) -> None:
    with pytest.raises(ControlMessageError, match=message):
        parse_result(line)


hosts = st.text(min_size=1, max_size=300)
ports = st.none() | st.integers(0, 65535)
results: st.SearchStrategy[ResolveResult] = st.one_of(
    st.builds(LocalAddress, hosts, st.integers(0, 65535)),
    st.just(NotFound()),
    st.just(NotCluster()),
)


@given(hosts, ports)
def test_request_round_trip(host: str, port: int | None) -> None:
    line = encode_request(ResolveRequest(host, port))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert parse_request(line) == ResolveRequest(host, port)


@given(results)
def test_result_round_trip(result: ResolveResult) -> None:
    line = encode_result(result)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert parse_result(line) == result


@given(st.binary(max_size=200) | st.from_regex(rb'\{"op": ?"resolve".*', fullmatch=True))
def test_garbage_is_a_control_message_error_or_a_request(line: bytes) -> None:
    for parse in (parse_request, parse_result):
        try:
            parse(line)
        except ControlMessageError:
            pass
