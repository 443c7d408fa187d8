"""The cluster network on the testbed: a process innerloop launches in the laptop netns (which
reaches only the API server) calls a second Service by name, and only innerloop's path can
carry that traffic.

- Under `innerloop intercept … -- python app.py`, an intercepted request's handler calls the
  `whoami` Service by short name, `svc.ns`, FQDN and `$WHOAMI_SERVICE_HOST`, with requests,
  urllib, `asyncio.open_connection` and a raw socket; curl goes through the proxy env; whoami
  sees the intercepted workload's pod IP as the peer (the agent dials from the pod).
- `innerloop run` reaches the same Service through a port-forward, `status` shows the mapping
  and the live connection, and every object in the namespace is as before.
- F5's path: `innerloop dap` launches the same handler, which gets the same network.
- A name that is no Service gives `socket.gaierror`; `localhost` resolves as always.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cluster_apps import WHOAMI_APP, deploy, pod_ips, python_app
from tests.helpers.dap_client import DapClient, end_adapter
from tests.helpers.snapshot import namespace_snapshot
from tools.cluster import Cluster
from tools.laptop import REPO, Laptop, host_get
from tools.sample import manifests
from tools.testbed.netns import dev_netns_argv, ensure
from tools.wait import poll_until

pytestmark = pytest.mark.e2e
LOCAL_PORT = 18090


CALLS = r'''
import asyncio, json, os, socket, subprocess, sys, urllib.request
import requests

NS = sys.argv[1]
PORT = int(os.environ["WHOAMI_SERVICE_PORT"])
NAMES = {"short": "whoami", "svc.ns": f"whoami.{NS}",
         "fqdn": f"whoami.{NS}.svc.cluster.local", "service_host": os.environ["WHOAMI_SERVICE_HOST"]}


def raw(host, path):
    with socket.create_connection((host, PORT), timeout=20) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data.decode().split("\r\n\r\n", 1)[1]


async def stream(host, path):
    reader, writer = await asyncio.open_connection(host, PORT)
    writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    return data.decode().split("\r\n\r\n", 1)[1]


def calls():
    """Every client and every name; the hook's path only (proxies off), then curl's (proxy)."""
    out = {}
    session = requests.Session()
    session.trust_env = False
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    clients = {
        "requests": lambda h, p: session.get(f"http://{h}:{PORT}{p}", timeout=20).text,
        "urllib": lambda h, p: direct.open(f"http://{h}:{PORT}{p}", timeout=20).read().decode(),
        "asyncio": lambda h, p: asyncio.run(stream(h, p)),
        "socket": raw,
    }
    for client, call in clients.items():
        for label, host in NAMES.items():
            try:
                out[f"{client} {label}"] = call(host, f"/{client}/{label}").strip()
            except Exception as exc:
                out[f"{client} {label}"] = f"ERROR {exc!r}"
    curl = subprocess.run(["curl", "-sS", "-m", "20", f"http://whoami.{NS}/curl"],
                          capture_output=True, text=True)
    out["curl proxy"] = (curl.stdout or curl.stderr).strip()
    try:
        socket.getaddrinfo(f"nosuch.{NS}", 80)
        out["nosuch"] = "resolved"
    except socket.gaierror as exc:
        out["nosuch"] = f"gaierror {exc.errno}"
    out["localhost"] = socket.getaddrinfo("localhost", 80, socket.AF_INET)[0][4][0]
    return out
'''
"""What the local process does with the cluster network (shared by the handler and `run`)."""

HANDLER = CALLS + r'''
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(calls()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = HTTPServer(("127.0.0.1", int(sys.argv[2])), Handler)
print("handler listening", flush=True)
server.serve_forever()
'''
"""The intercepted app: each request makes every call and answers what came back."""

RUN = CALLS + r'''
print("CALLS " + json.dumps(calls()), flush=True)
print("SECRET " + os.environ.get("SECRET_VALUE", "-"), flush=True)
held = socket.create_connection(("whoami", PORT))
print("holding", flush=True)
while not os.path.exists(sys.argv[2]):
    import time
    time.sleep(0.1)
held.close()
'''
"""`innerloop run`: the calls, the workload's env, then one connection held open for status."""


def deploy_whoami(cluster: Cluster, namespace: str) -> None:
    deploy(cluster, namespace, [python_app("whoami", WHOAMI_APP)])


def assert_calls_answered(results: dict[str, Any], namespace: str, peers: set[str] | None
                          ) -> None:
    """Every client reached whoami by every name (and from one of `peers`, when given)."""
    for label in [f"{c} {n}" for c in ("requests", "urllib", "asyncio", "socket")
                  for n in ("short", "svc.ns", "fqdn", "service_host")] + ["curl proxy"]:
        body = results[label]
        assert body.startswith("whoami peer="), (label, body)
        if peers is not None:
            peer = body.split()[1].removeprefix("peer=")
            assert peer in peers, (label, body, peers)
    assert results["nosuch"] == "gaierror -2", results["nosuch"]  # EAI_NONAME, as in a pod
    assert results["localhost"] == "127.0.0.1"


def test_an_intercepted_handler_calls_another_service_from_the_workloads_pod(
    cluster: Cluster, namespace: str, laptop: Laptop, tmp_path: Path
) -> None:
    cluster.deploy_echo(namespace, replicas=1)
    deploy_whoami(cluster, namespace)
    app = tmp_path / "app.py"
    app.write_text(HANDLER)

    proc, lines = laptop.innerloop("intercept", "echo", "-n", namespace, "--port",
                                   f"{LOCAL_PORT}:http", "--", sys.executable, str(app),
                                   namespace, str(LOCAL_PORT))
    lines.wait_for("handler listening", 180)
    echo_pods = pod_ips(cluster, namespace, "echo")
    assert pod_ips(cluster, namespace, "whoami").isdisjoint(echo_pods)

    url = f"http://{cluster.cluster_ip(namespace, 'echo')}/check"
    results = json.loads(host_get(url, timeout=120))
    assert_calls_answered(results, namespace, peers=echo_pods)

    # The network rewrites its status file 0.2 s after a change; `status` may start sooner.
    mapped = f"whoami.{namespace}:80 → 127.0.0.1:"

    def listed() -> str:
        out = laptop.run("status").stdout
        return out if mapped in out else ""

    status = poll_until(listed, f"`innerloop status` to list {mapped}", timeout=10)
    assert "connections leave through the agents of deployment/echo" in status
    laptop.stop(proc)  # the app is ended by a signal: its status is the CLI's
    lines.wait_for("leaving; the cluster serves the traffic again", 5)


def test_run_reaches_the_service_and_changes_nothing(
    cluster: Cluster, namespace: str, laptop: Laptop, tmp_path: Path
) -> None:
    cluster.deploy_echo(namespace, replicas=1)
    deploy_whoami(cluster, namespace)
    before = namespace_snapshot(cluster, namespace)
    script, done = tmp_path / "client.py", tmp_path / "done"
    script.write_text(RUN)

    proc, lines = laptop.innerloop("run", "-n", namespace, "--like", "deploy/echo", "--",
                                   sys.executable, str(script), namespace, str(done))
    results = json.loads(lines.wait_for("CALLS ", 120).removeprefix("CALLS "))
    assert_calls_answered(results, namespace, peers=None)
    assert lines.wait_for("SECRET ", 10) == f"SECRET {manifests.SECRET_VALUE}"
    lines.wait_for("holding", 30)
    status = laptop.run("status").stdout
    assert f"whoami.{namespace}:80 → 127.0.0.1:" in status, status
    assert "port-forwards" in status and f"→ whoami.{namespace}:80 via pod/whoami-" in status, \
        status
    done.touch()
    assert proc.wait(30) == 0, lines.text()
    assert "cluster network of pid" not in laptop.run("status").stdout

    assert namespace_snapshot(cluster, namespace) == before
    containers = {c["name"] for p in cluster.kubectl_json(
        "-n", namespace, "get", "pods")["items"] for c in p["spec"]["containers"]}
    assert containers == {"echo"}, "no agent was installed"


async def test_a_dap_launch_gives_the_debuggee_the_cluster_network(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(cluster.deploy_echo, namespace, 1)
    await asyncio.to_thread(deploy_whoami, cluster, namespace)
    app = tmp_path / "app.py"
    app.write_text(HANDLER)
    ensure()
    with (tmp_path / "dap.log").open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            *dev_netns_argv([sys.executable, "-m", "innerloop", "-v", "dap"]),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
            cwd=REPO, start_new_session=True,
            env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig),
                 "INNERLOOP_AGENT_IMAGE": manifests.PYTHON_IMAGE, "PYTHONUNBUFFERED": "1"})
    assert proc.stdin is not None and proc.stdout is not None
    client = DapClient(proc.stdout, proc.stdin)
    try:
        await client.initialize()
        launched = client.request_nowait("launch", {
            "type": "innerloop", "request": "launch", "name": "handler", "service": "echo",
            "namespace": namespace, "servicePort": 80, "port": LOCAL_PORT,
            "program": str(app), "args": [namespace, str(LOCAL_PORT)], "cwd": str(tmp_path),
        })
        await client.event("initialized", timeout=180)
        await client.ok("configurationDone")
        assert (await asyncio.wait_for(launched, 30))["success"]
        await client.wait_for(lambda: any(
            e["event"] == "output" and "handler listening" in e["body"].get("output", "")
            for e in client.events), timeout=30)
        url = f"http://{cluster.cluster_ip(namespace, 'echo')}/check"
        results = json.loads(await asyncio.to_thread(host_get, url, 120))
        assert_calls_answered(results, namespace, peers=pod_ips(cluster, namespace, "echo"))
    finally:
        await end_adapter(proc)
        await client.aclose()
