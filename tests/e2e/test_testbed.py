"""The testbed is a real cluster: the 2-replica sample answers through a ClusterIP and its DNS
name (from a client pod), through a port-forward opened with the `kubernetes` client, and
through exec; the developer netns reaches the API server and nothing else."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import Protocol

import pytest

from tests.helpers.http_app import answer_body, answer_complete, echo_get
from tools.cluster import Cluster, parse_answer
from tools.sample import manifests
from tools.testbed import netns, network
from tools.testbed.config import API_PORT, BRIDGE, DEV_NETNS, NODE_IP

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Echo:
    """The 2-replica echo sample and a client pod in one namespace, shared by this module's
    read-only checks (one rollout instead of one per test)."""

    namespace: str
    pods: list[str]


@pytest.fixture(scope="module")
def echo(cluster: Cluster, module_namespace: str) -> Echo:
    pods = cluster.deploy_echo(module_namespace)
    cluster.start_client(module_namespace)
    return Echo(module_namespace, pods)


class _Socket(Protocol):
    def sendall(self, data: bytes, /) -> None: ...
    def recv(self, size: int, /) -> bytes: ...


def http_get_over(sock: _Socket, path: str) -> str:
    """One GET to the echo app over a connected socket; the body once Content-Length bytes are
    in."""
    sock.sendall(echo_get(path))
    data = b""
    while not answer_complete(data) and (chunk := sock.recv(65536)):
        data += chunk
    return answer_body(data)


def test_clusterip_and_dns_from_a_client_pod(cluster: Cluster, echo: Echo) -> None:
    namespace, pods = echo.namespace, set(echo.pods)
    ip = cluster.cluster_ip(namespace, "echo")
    for host, path in (
        (ip, "/by-ip"),
        (f"echo.{namespace}.svc.cluster.local", "/by-dns"),
        ("echo", "/by-short-name"),
    ):
        result = cluster.load_via_exec(namespace, f"http://{host}{path}", count=40, rate=100)
        assert result.failures == [] and result.summary["ok"] == 40, result.failures[:3]
        assert result.pods == pods, f"{host} answered from {result.pods}, replicas are {pods}"
        answer = parse_answer(result.records[0]["body"])
        assert answer["path"] == path
        assert answer["secret"] == manifests.SECRET_VALUE
        assert answer["config"] == manifests.CONFIG_VALUE


def test_steady_load_from_a_load_pod(cluster: Cluster, echo: Echo) -> None:
    namespace, pods = echo.namespace, set(echo.pods)
    cluster.start_load_pod(namespace, "load", "http://echo/steady", duration=2, rate=50)
    result = cluster.collect_load_pod(namespace, "load")
    counts = {k: result.summary.get(k) for k in ("summary", "sent", "ok", "failed")}
    assert counts == {"summary": True, "sent": 100, "ok": 100, "failed": 0}, result.summary
    assert result.pods == pods


def test_statefulset_with_named_target_port(cluster: Cluster, namespace: str) -> None:
    pods = set(cluster.deploy_echo(namespace, statefulset=True))
    assert pods == {"echo-sts-0", "echo-sts-1"}
    service = cluster.kubectl_json("-n", namespace, "get", "service", "echo-sts")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    cluster.start_client(namespace)
    result = cluster.load_via_exec(namespace, "http://echo-sts/sts", count=30, rate=100)
    assert result.failures == [] and result.pods == pods


def test_port_forward_with_the_kubernetes_client(cluster: Cluster, echo: Echo) -> None:
    from kubernetes import client
    from kubernetes.stream import portforward

    namespace, pods = echo.namespace, echo.pods
    core = client.CoreV1Api(cluster.api_client())
    seen = set()
    for pod in pods:
        forward = portforward(
            core.connect_get_namespaced_pod_portforward,
            pod,
            namespace,
            ports=str(manifests.ECHO_PORT),
        )
        try:
            sock = forward.socket(manifests.ECHO_PORT)
            sock.setblocking(True)
            answer = parse_answer(http_get_over(sock, "/via-port-forward"))
            sock.close()
        finally:
            forward.close()
        assert answer["path"] == "/via-port-forward"
        seen.add(answer["pod"])
    assert seen == set(pods)


def test_exec_with_the_kubernetes_client(cluster: Cluster, echo: Echo) -> None:
    from kubernetes import client
    from kubernetes.stream import stream

    namespace, pods = echo.namespace, echo.pods
    core = client.CoreV1Api(cluster.api_client())
    fetch = (
        "import urllib.request as u; "
        "print(u.urlopen('http://127.0.0.1:8080/via-exec').read().decode())"
    )
    for pod in pods:
        out = stream(
            core.connect_get_namespaced_pod_exec,
            pod,
            namespace,
            command=["python3", "-c", fetch],
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
        )
        answer = parse_answer(out)
        assert answer["pod"] == pod and answer["path"] == "/via-exec", out


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _connects_from_dev_netns(host: str, port: int) -> bool:
    code = f"import socket; socket.create_connection(({host!r}, {port}), timeout=2).close()"
    return netns.dev_netns_run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_dev_netns_reaches_only_the_api_server(cluster: Cluster, echo: Echo) -> None:
    if not cluster.testbed:
        pytest.skip("the developer netns belongs to the local testbed")
    namespace, pods = echo.namespace, echo.pods
    service_ip = cluster.cluster_ip(namespace, "echo")
    pod_ip = cluster.kubectl_json("-n", namespace, "get", "pod", pods[0])["status"]["podIP"]
    # The host reaches both, so the netns refusing them below is the fence, not a dead service.
    assert _connects(service_ip, 80) and _connects(pod_ip, manifests.ECHO_PORT)
    assert not _connects_from_dev_netns(service_ip, 80)
    assert not _connects_from_dev_netns(pod_ip, manifests.ECHO_PORT)
    assert _connects_from_dev_netns(NODE_IP, API_PORT)

    # The API server is fully usable from inside: kubectl and a kubernetes-client port-forward.
    listing = netns.dev_netns_run(
        [cluster.kubectl_bin, "-n", namespace, "get", "pods", "-l", "app=echo", "-o", "name"],
        capture_output=True,
        text=True,
        env=cluster.env(),
        check=True,
    )
    assert sorted(listing.stdout.split()) == [f"pod/{p}" for p in pods]
    forward_script = textwrap.dedent(f"""
        from kubernetes import client, config
        from kubernetes.stream import portforward
        api_client = config.new_client_from_config(config_file={str(cluster.kubeconfig)!r})
        api = client.CoreV1Api(api_client)
        pf = portforward(api.connect_get_namespaced_pod_portforward, {pods[0]!r}, {namespace!r},
                         ports="8080")
        s = pf.socket(8080)
        s.setblocking(True)
        s.sendall(b"GET /from-dev-netns HTTP/1.0\\r\\n\\r\\n")
        data = b""
        while b"path=" not in data:
            data += s.recv(65536)
        print(data.decode().split("\\r\\n\\r\\n", 1)[1])
        pf.close()
    """)
    proc = netns.dev_netns_run(
        [sys.executable, "-c", forward_script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert parse_answer(proc.stdout)["path"] == "/from-dev-netns"

    routes = json.loads(
        subprocess.run(
            ["ip", "netns", "exec", DEV_NETNS, "ip", "-j", "route"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert [r["dst"] for r in routes if r.get("scope") != "link"] == [NODE_IP]


def test_pod_egress_is_fenced(cluster: Cluster, echo: Echo) -> None:
    """Asks the kernel's routing decision for a pod's traffic to an outside address (no packet is
    sent), and checks the FORWARD guard on every uplink."""
    if not cluster.testbed:
        pytest.skip("checks the testbed's own network fence")
    namespace, pods = echo.namespace, echo.pods
    pod_ip = cluster.kubectl_json("-n", namespace, "get", "pod", pods[0])["status"]["podIP"]
    gateways = [
        r["gateway"]
        for r in json.loads(
            subprocess.run(
                ["ip", "-j", "route", "show", "default"], capture_output=True, text=True, check=True
            ).stdout
        )
        if "gateway" in r
    ]
    for outside in ("203.0.113.7", *gateways):
        lookup = subprocess.run(
            ["ip", "route", "get", outside, "from", pod_ip, "iif", BRIDGE],
            capture_output=True,
            text=True,
            check=False,
        )
        assert lookup.returncode != 0 and "No route to host" in lookup.stderr, (outside, lookup)
    inside = subprocess.run(
        ["ip", "route", "get", "198.19.0.1", "from", pod_ip, "iif", BRIDGE],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"dev {BRIDGE}" in inside.stdout
    guards = subprocess.run(
        ["iptables", "-t", "mangle", "-S", "FORWARD"], capture_output=True, text=True, check=True
    ).stdout
    for dev in network.uplinks():
        assert f"-o {dev} -m comment" in guards and "-j DROP" in guards
