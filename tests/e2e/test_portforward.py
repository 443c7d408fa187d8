"""The websocket port-forward client (a Transport) against the real API server: HTTP to the
sample app, a refused port as ClusterError, many forwards at once, and 10 MB each way through
an echo server that listens on the pod's loopback only (reachable by nothing but port-forward).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from innerloop.core.errors import ClusterError, UserError
from innerloop.k8s.gateway import Gateway
from innerloop.k8s.portforward import PortForward

from tests.helpers.http_app import answer_body, answer_complete, echo_get
from tools.cluster import Cluster, parse_answer
from tools.sample import manifests
from tools.wait import retry

pytestmark = pytest.mark.e2e

ECHO_TCP_PORT = 7000
TCP_ECHO = f"""
import socket, threading
def serve(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)
server = socket.create_server(("127.0.0.1", {ECHO_TCP_PORT}), backlog=128)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


@pytest.fixture(scope="module")
def echo(cluster: Cluster, module_namespace: str) -> tuple[str, list[str]]:
    """The 2-replica echo sample, shared by the tests that only forward to it: its namespace
    and pods (a test that deletes a pod deploys its own)."""
    return module_namespace, cluster.deploy_echo(module_namespace)


@pytest.fixture
async def gateway(cluster: Cluster) -> AsyncIterator[Gateway]:
    gw = await Gateway.connect(str(cluster.kubeconfig))
    yield gw
    await gw.close()


async def http_get(transport: PortForward, path: str) -> str:
    """One GET to the echo app through ``transport``; the body once Content-Length bytes are in."""
    await transport.send(echo_get(path))
    data = b""
    while not answer_complete(data) and (chunk := await transport.recv()):
        data += chunk
    return answer_body(data)


async def test_http_through_a_port_forward(
    echo: tuple[str, list[str]], gateway: Gateway
) -> None:
    namespace, pods = echo
    for pod in pods:
        transport = await gateway.port_forward(namespace, pod, manifests.ECHO_PORT)
        try:
            answer = parse_answer(await http_get(transport, "/via-websocket"))
        finally:
            await transport.close()
        assert answer["pod"] == pod and answer["path"] == "/via-websocket"
        assert answer["secret"] == manifests.SECRET_VALUE


async def test_a_closed_port_is_a_cluster_error(
    echo: tuple[str, list[str]], gateway: Gateway
) -> None:
    namespace, [pod, _] = echo
    transport = await gateway.port_forward(namespace, pod, 9999)
    with pytest.raises(ClusterError) as info:
        await transport.send(b"GET / HTTP/1.0\r\n\r\n")
        await transport.recv()
    assert str(info.value) == (
        f"port-forward to pod/{pod}:9999 in {namespace!r} failed: nothing listens on "
        "127.0.0.1:9999 in the pod (connection refused)"
    )
    with pytest.raises(ClusterError):  # the failure sticks
        await transport.recv()
    await transport.close()

    # A send after the server closed still names the reason; so does one that fails while
    # another task waits in recv(), as a tunnel's reader does.
    for reader in (False, True):
        transport = await gateway.port_forward(namespace, pod, 9999)
        waiting = asyncio.create_task(transport.recv()) if reader else None
        await asyncio.sleep(1.0)  # the refusal and the close have arrived
        with pytest.raises(ClusterError, match="nothing listens on 127.0.0.1:9999"):
            await transport.send(b"x" * 100)
        if waiting is not None:
            with pytest.raises(ClusterError, match="nothing listens on 127.0.0.1:9999"):
                await waiting
        await transport.close()

    with pytest.raises(UserError, match=f"^cannot port-forward to pod/nope:8080 in '{namespace}'"):
        await gateway.port_forward(namespace, "nope", 8080)


async def test_many_port_forwards_at_once(
    echo: tuple[str, list[str]], gateway: Gateway
) -> None:
    namespace, pods = echo
    count = 100

    async def one(i: int) -> str:
        transport = await gateway.port_forward(namespace, pods[i % 2], manifests.ECHO_PORT)
        try:
            return parse_answer(await http_get(transport, f"/n{i}"))["path"]
        finally:
            await transport.close()

    started = time.monotonic()
    paths = await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.monotonic() - started
    assert sorted(paths) == sorted(f"/n{i}" for i in range(count))
    print(f"\n{count} concurrent port-forwards with one HTTP request each: {elapsed:.2f} s")


async def test_ten_megabytes_each_way_to_a_loopback_only_server(
    cluster: Cluster, namespace: str, gateway: Gateway
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "tcp-echo"},
        "spec": {
            "containers": [
                {
                    "name": "echo",
                    "image": manifests.PYTHON_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["python3", "-c", TCP_ECHO],
                    "readinessProbe": {
                        "exec": {
                            "command": [
                                "python3",
                                "-c",
                                (
                                    "import socket; socket.create_connection("
                                    f"('127.0.0.1', {ECHO_TCP_PORT})).close()"
                                ),
                            ]
                        },
                        "periodSeconds": 1,
                    },
                }
            ],
            "terminationGracePeriodSeconds": 0,
        },
    }
    cluster.apply(namespace, [pod])
    cluster.kubectl(
        "-n", namespace, "wait", "pod/tcp-echo", "--for=condition=Ready", "--timeout=90s"
    )
    payload = os.urandom(10 * 1024 * 1024)
    transport = await gateway.port_forward(namespace, "tcp-echo", ECHO_TCP_PORT)
    received = hashlib.sha256()
    total = 0

    async def receive() -> None:
        nonlocal total
        while total < len(payload):
            chunk = await transport.recv()
            assert chunk, f"port-forward ended after {total} bytes"
            received.update(chunk)
            total += len(chunk)

    started = time.monotonic()
    # one send() of all 10 MB: the client cuts it into messages far below the 32 MiB limit
    await asyncio.wait_for(asyncio.gather(transport.send(payload), receive()), timeout=120)
    elapsed = time.monotonic() - started
    await transport.close()
    assert total == len(payload)
    assert received.hexdigest() == hashlib.sha256(payload).hexdigest()
    print(
        f"\n10 MiB each way through the port-forward: {elapsed:.2f} s "
        f"({2 * len(payload) / elapsed / 1e6:.1f} MB/s total)"
    )


async def test_a_deleted_pod_ends_the_forward(
    cluster: Cluster, namespace: str, gateway: Gateway
) -> None:
    [pod] = cluster.deploy_echo(namespace, replicas=1)
    transport = await gateway.port_forward(namespace, pod, manifests.ECHO_PORT)
    await transport.send(b"GET /never-finished HTTP/1.0\r\n")  # the request stays open
    cluster.kubectl("-n", namespace, "delete", "pod", pod, "--grace-period=0", "--wait=false")
    started = time.monotonic()
    try:
        async with asyncio.timeout(30):
            while await transport.recv():
                pass
    except ClusterError:
        pass  # ended with the reason, which is as good as EOF here
    print(f"\nforward to a deleted pod ended after {time.monotonic() - started:.1f} s")
    await transport.close()


async def test_debug_logs_never_show_the_bearer_token(
    cluster: Cluster, echo: tuple[str, list[str]], tmp_path: Path,
    caplog: pytest.LogCaptureFixture
) -> None:
    """websockets logs handshake headers at DEBUG; the Authorization header must not appear."""
    from tests.e2e.test_k8s_gateway import restricted_kubeconfig

    namespace, pods = echo
    kubeconfig = restricted_kubeconfig(cluster, namespace, tmp_path)
    cluster.kubectl("-n", namespace, "create", "role", "forwarder", "--verb=get,create",
                    "--resource=pods/portforward")
    cluster.kubectl("-n", namespace, "create", "rolebinding", "forwarder", "--role=forwarder",
                    f"--serviceaccount={namespace}:viewer")
    token = json.loads(kubeconfig.read_text())["users"][0]["user"]["token"]
    caplog.set_level(logging.DEBUG)
    gw = await Gateway.connect(str(kubeconfig))
    try:
        # RBAC caches take a moment to see the new binding.
        forward = await retry(
            lambda: gw.port_forward(namespace, pods[0], 8080), ClusterError, 10, interval=0.2
        )
        await forward.close()
    finally:
        await gw.close()
    assert "port-forward open" in caplog.text, "the handshake was logged at DEBUG"
    assert token not in caplog.text
