"""Garbage on the tunnel: a stranger reaches an agent's tunnel port through the API server's
port-forward (as anyone allowed `pods/portforward` can) and sends random bytes, a truncated
frame, a huge length, a wrong version, a valid handshake followed by nonsense. The agent closes
that connection and only that one: it keeps running (no restart), keeps serving the app, and the
developer's intercept over its own tunnel goes on untouched."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from innerloop.core import frames

from tests.helpers.traffic import sources, url
from tools.cluster import Cluster
from tools.laptop import Laptop, Lines

pytestmark = pytest.mark.e2e
CLOSED_WITHIN = 10.0
"""The agent ends a connection it cannot read at once, and a silent one after its peer timeout
(2 s); 10 s leaves room for a loaded machine."""


def hello(version: int = frames.VERSION) -> bytes:
    return frames.encode(frames.Hello(version, "stranger", 65536))


GARBAGE: dict[str, bytes] = {
    "random bytes": os.urandom(4096),
    "a truncated frame, then silence": frames.HEADER.pack(100, 0x01, 0) + b"\x00" * 10,
    "a huge length": frames.HEADER.pack(0xFFFFFFFF, 0x01, 0),
    "an unknown frame type": frames.HEADER.pack(0, 0xEE, 0),
    "a wrong version": hello(version=99),
    "version 0": hello(version=0),
    "a valid hello, then nonsense": hello() + os.urandom(512),
    "a valid hello, then a frame on stream 0 that needs a stream": hello()
    + frames.HEADER.pack(4, 0x0A, 0) + b"\x00" * 4,
    "nothing at all": b"",
}


@pytest.fixture
def port_forward(cluster: Cluster) -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def forward(cluster: Cluster, namespace: str, pod: str, port: int,
            procs: list[subprocess.Popen[str]]) -> int:
    """`kubectl port-forward` from the host; returns its local port."""
    proc = subprocess.Popen(
        [cluster.kubectl_bin, "-n", namespace, "port-forward", f"pod/{pod}", f":{port}"],
        env=cluster.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    procs.append(proc)
    assert proc.stdout is not None
    line = Lines(proc.stdout).wait_for("Forwarding from 127.0.0.1:", 30)
    return int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]


def closed_after(port: int, garbage: bytes) -> float:
    """Send ``garbage`` and return how long until the far end closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=CLOSED_WITHIN) as sock:
        sent = time.monotonic()
        sock.sendall(garbage)
        try:
            while sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
        return time.monotonic() - sent


def agent_restarts(cluster: Cluster, namespace: str, pod: str) -> int:
    statuses = cluster.kubectl_json("-n", namespace, "get", "pod", pod)["status"]
    return sum(s["restartCount"] for s in statuses["containerStatuses"])


def test_garbage_on_the_tunnel_closes_only_that_connection(
    cluster: Cluster, namespace: str, laptop: Laptop,
    port_forward: list[subprocess.Popen[str]]
) -> None:
    cluster.deploy_echo(namespace, replicas=1)
    cluster.start_client(namespace)
    _, port = laptop.start_app_on_a_free_port()
    target = url(cluster, namespace)
    proc, lines, _ = laptop.intercept(namespace, "echo", f"{port}:80")
    [pod] = cluster.pods(namespace, "echo")
    spec = cluster.kubectl_json("-n", namespace, "get", "pod", pod)["spec"]
    [agent] = [c for c in spec["containers"] if c["name"] == "innerloop-agent"]
    tunnel_port = int(agent["command"][agent["command"].index("--tunnel-port") + 1])
    cluster.start_load_pod(namespace, "steady", target, duration=20, rate=20, timeout=5)
    cluster.wait_load_pod_sending(namespace, "steady")

    local = forward(cluster, namespace, pod, tunnel_port, port_forward)
    took = {what: closed_after(local, garbage) for what, garbage in GARBAGE.items()}
    print("\nthe agent closed the stranger's connection after: "
          + ", ".join(f"{what} {t:.2f} s" for what, t in took.items()))
    assert all(t < CLOSED_WITHIN for t in took.values()), took

    assert agent_restarts(cluster, namespace, pod) == 0, "the agent stays up"
    assert set(sources(cluster.load_via_exec(namespace, target, count=20))) == {"local"}
    steady = cluster.collect_load_pod(namespace, "steady", timeout=90)
    assert steady.failures == [] and set(sources(steady)) == {"local"}, steady.failures[:5]
    assert proc.poll() is None and "lost" not in lines.text(), lines.text()
