"""gRPC (HTTP/2 cleartext) routed per call by a metadata header, on the testbed (issue 9).

The cluster's gRPC service and the caller run in pods, which have no grpcio: both speak the
gRPC wire format over h2 from the agent's own zipapp (tests/helpers/grpc_pod.py, mounted from a
ConfigMap). The developer's side is a real grpcio server in the developer netns, which reaches
only the API server. One client connection carries four calls at once: unary and
server-streaming, with and without ``x-dev: me``, and two with ``x-copy: yes``, which a
second developer mirrors: the cluster answers them, a copy reaches the mirror's process.
"""

from __future__ import annotations

import base64
import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from innerloop.agent.zipapp import agent_bundle

from tests.helpers import cluster_apps
from tools.cluster import Cluster
from tools.laptop import Laptop
from tools.sample import manifests
from tools.wait import poll_until

pytestmark = pytest.mark.e2e

POD_SCRIPT = Path(cluster_apps.__file__).with_name("grpc_pod.py")
LOCAL_PORT = 28191
LAPTOP_GRPC = """
import asyncio, sys, grpc
WHO = sys.argv[2]
async def main():
    async def unary(request, context):
        print(f"seen {request.decode()}", flush=True)
        return f"{WHO} {request.decode()}".encode()
    async def stream(request, context):
        print(f"seen {request.decode()}", flush=True)
        for i in range(int(request)):
            if i:
                await asyncio.sleep(0.2)
            yield f"{WHO} {i}".encode()
    handler = grpc.method_handlers_generic_handler("demo.Who", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.unary_stream_rpc_method_handler(stream)})
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{sys.argv[1]}")
    await server.start()
    print("grpc listening", flush=True)
    await server.wait_for_termination()
asyncio.run(main())
"""
ME = {"x-dev": "me"}
COPY = {"x-copy": "yes"}
CALLS = [
    {"name": "unary-me", "path": "/demo.Who/Unary", "request": "hi", "metadata": ME},
    {"name": "stream-me", "path": "/demo.Who/Stream", "request": "5", "metadata": ME},
    {"name": "unary", "path": "/demo.Who/Unary", "request": "hi"},
    {"name": "stream", "path": "/demo.Who/Stream", "request": "5"},
    {"name": "unary-copied", "path": "/demo.Who/Unary", "request": "copy1", "metadata": COPY},
    {"name": "stream-copied", "path": "/demo.Who/Stream", "request": "3", "metadata": COPY},
]


def code_configmap() -> manifests.Manifest:
    """The pod script and the agent's zipapp (for its h2), as /client/* in the client pod."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "load-code"},
            "data": {"grpc_pod.py": POD_SCRIPT.read_text()},
            "binaryData": {"agent.pyz": base64.b64encode(agent_bundle()[1]).decode()}}


def calls(cluster: Cluster, namespace: str, ip: str) -> dict[str, Any]:
    proc = cluster.kubectl("-n", namespace, "exec", "client", "--", "python3",
                           "/client/grpc_pod.py", "call", ip, "80", json.dumps(CALLS),
                           timeout=60)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def accepts(ip: str) -> bool:
    """The ClusterIP takes connections (from the host, which reaches Service addresses)."""
    try:
        socket.create_connection((ip, 80), timeout=1).close()
    except OSError:
        return False
    return True


def who(result: dict[str, Any]) -> dict[str, set[str]]:
    """Who answered each call ("cluster" for the greeter pods), from every message."""
    return {name: {"cluster" if m.split()[0].startswith("greeter-") else m.split()[0]
                   for m in call["messages"]} for name, call in result.items()}


def test_grpc_calls_are_routed_by_metadata_and_streams_keep_streaming(
        cluster: Cluster, namespace: str) -> None:
    app = cluster_apps.python_app("greeter", POD_SCRIPT.read_text(), env=[
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}], volumes=[
        {"name": "pyz", "configMap": {"name": "load-code"}}], mounts=[
        {"name": "pyz", "mountPath": "/pyz", "readOnly": True}])
    app[2]["spec"]["ports"][0]["name"] = "grpc"  # the port's name says h2: no --protocol needed
    # created, not applied: apply's last-applied annotation cannot hold the zipapp
    cluster.kubectl("-n", namespace, "create", "-f", "-", input=json.dumps(code_configmap()))
    cluster.apply(namespace, [manifests.client_pod("client")])
    cluster_apps.deploy(cluster, namespace, [app])
    cluster.kubectl("-n", namespace, "wait", "pod/client", "--for=condition=Ready",
                    "--timeout=90s", timeout=100)
    ip = cluster.cluster_ip(namespace, "greeter")
    poll_until(lambda: accepts(ip), "kube-proxy's rules for the greeter Service", 30)
    before = calls(cluster, namespace, ip)
    assert who(before) == {c["name"]: {"cluster"} for c in CALLS}, before

    laptop, mirror = Laptop(cluster), Laptop(cluster)  # two developers
    try:
        _, server_lines = laptop.popen([sys.executable, "-c", LAPTOP_GRPC, str(LOCAL_PORT),
                                        "laptop"])
        _, copy_lines = mirror.popen([sys.executable, "-c", LAPTOP_GRPC, str(LOCAL_PORT + 1),
                                      "mirror"])
        server_lines.wait_for("grpc listening", 30)
        copy_lines.wait_for("grpc listening", 30)
        proc, lines = laptop.innerloop("intercept", "greeter", "-n", namespace, "--port",
                                       f"{LOCAL_PORT}:80", "--header", "x-dev=me")
        lines.wait_for("innerloop: intercepting", 180)
        assert "only requests with x-dev=me (read as HTTP/2 (h2c))" in lines.text(), lines.text()
        mirror_proc, mirror_lines = mirror.innerloop(
            "intercept", "greeter", "-n", namespace, "--port", f"{LOCAL_PORT + 1}:80",
            "--mirror", "--header", "x-copy=yes")
        mirror_lines.wait_for("mirroring", 180)
        during = calls(cluster, namespace, ip)
        copy_lines.wait_for("seen copy1", 15)  # the copies reached the mirror's process
        copy_lines.wait_for("seen 3", 15)
        assert laptop.stop(proc) == 0, lines.text()
        assert mirror.stop(mirror_proc) == 0, mirror_lines.text()
        after = calls(cluster, namespace, ip)
    finally:
        laptop.close()
        mirror.close()
    print(f"\ngRPC over one h2 connection while intercepted: {json.dumps(during)}")
    assert who(during) == {"unary-me": {"laptop"}, "stream-me": {"laptop"},
                           "unary": {"cluster"}, "stream": {"cluster"},
                           "unary-copied": {"cluster"}, "stream-copied": {"cluster"}}, during
    assert "seen hi" not in copy_lines.text(), "only matching calls are copied"
    for name, call in during.items():
        assert call["status"] == "0" and "reset" not in call, (name, call)
    assert during["unary-me"]["messages"] == ["laptop hi"]
    assert during["stream-me"]["messages"] == [f"laptop {i}" for i in range(5)]
    assert len(during["stream"]["messages"]) == 5
    for name in ("stream-me", "stream"):  # streamed: each message as it was sent, not at the end
        at = during[name]["at"]
        assert at[-1] - at[0] >= 0.6, (name, at)
    assert who(after) == {c["name"]: {"cluster"} for c in CALLS}, after
