"""More of the cluster network on the testbed (issue 8's "What it must show"), from a process
launched by `innerloop intercept … -- python script.py` in the laptop netns, which reaches
only the API server:

- a long-lived TCP connection to a line-protocol server in a pod survives 60 s idle;
- httpx (sync and async, through the hook; and through HTTP_PROXY), aiohttp;
- a gRPC unary call with grpcio through `grpc_proxy` to a gRPC server in a pod (grpcio comes
  from this venv's site-packages, mounted read-only into the pod: the image has none);
- a name that is no Service gives the same `socket.gaierror` (errno and message) as in a pod,
  in the launched process and in its child; an /etc/hosts name resolves as `getent` says;
- a NetworkPolicy that denies the workload's egress to a Service denies the local process too
  (skipped, saying why, when the cluster does not enforce NetworkPolicy).

Every answer names the peer it saw: the intercepted workload's pod IP (the agent dials from it).
One intercept makes every call (the `run` fixture); each test checks one part of what it saw.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cluster_network import LOCAL_PORT, WHOAMI_APP
from tests.helpers.cluster_apps import deploy, pod_ips, python_app
from tools.cluster import Cluster
from tools.laptop import Laptop
from tools.testbed.netns import dev_netns_argv

pytestmark = pytest.mark.e2e
IDLE_SECONDS = 60
HOSTS_NAME = "runsc"
"""A name in this machine's /etc/hosts (besides localhost)."""

LINES_APP = '''
import itertools, socketserver

count = itertools.count(1)


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        n = next(count)
        for line in self.rfile:
            self.wfile.write(f"conn={n} peer={self.client_address[0]} "
                             f"got={line.decode().strip()}\\n".encode())


socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.daemon_threads = True
socketserver.ThreadingTCPServer(("0.0.0.0", 7000), Handler).serve_forever()
'''
"""A line-protocol server: each line is answered with the connection's number and peer."""

GRPC_APP = '''
from concurrent import futures
import grpc


def say(request, context):
    return b"grpc peer=" + context.peer().encode() + b" got=" + request


server = grpc.server(futures.ThreadPoolExecutor(4))
server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
    "e2e.Echo", {"Say": grpc.unary_unary_rpc_method_handler(say)})])
server.add_insecure_port("0.0.0.0:50051")
server.start()
server.wait_for_termination()
'''
"""A gRPC server with a generic bytes-in, bytes-out method (no generated code needed)."""

GAI = '''
import json, socket, sys
out = {}
for name in sys.argv[1:]:
    try:
        out[name] = socket.getaddrinfo(name, 80, socket.AF_INET)[0][4][0]
    except socket.gaierror as exc:
        out[name] = [exc.errno, exc.strerror]
print(json.dumps(out))
'''
"""How each name resolves (address or [errno, message]); run locally and in a pod."""

SCRIPT = r'''
import asyncio, json, socket, subprocess, sys, time
import aiohttp, grpc, httpx

NS, GAI = sys.argv[1], sys.argv[2]
out = {}

line = socket.create_connection(("lines", 7000), timeout=30)
stream = line.makefile("rwb")


def say(text):
    stream.write(text.encode() + b"\n")
    stream.flush()
    return stream.readline().decode().strip()


out["line before"] = say("before")
idle_from = time.monotonic()  # the line connection now idles while the rest runs


def attempt(label, call):
    try:
        out[label] = call().strip()
    except Exception as exc:
        out[label] = f"ERROR {exc!r}"


def httpx_sync(host, path, trust_env):
    with httpx.Client(trust_env=trust_env, timeout=30) as client:
        return client.get(f"http://{host}{path}").text


async def httpx_async(host, path):
    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
        return (await client.get(f"http://{host}{path}")).text


async def aiohttp_get(host, path):
    async with aiohttp.ClientSession() as session:  # trust_env=False: the hook's path
        async with session.get(f"http://{host}{path}") as response:
            return await response.text()


def grpc_say():
    with grpc.insecure_channel(f"grpc-echo.{NS}:50051") as channel:  # via grpc_proxy
        return channel.unary_unary("/e2e.Echo/Say")(b"hi", timeout=30).decode()


attempt("httpx sync", lambda: httpx_sync("whoami", "/httpx-sync", False))
attempt("httpx async", lambda: asyncio.run(httpx_async(f"whoami.{NS}", "/httpx-async")))
attempt("httpx proxy", lambda: httpx_sync(f"whoami.{NS}.svc.cluster.local", "/httpx-proxy", True))
attempt("aiohttp", lambda: asyncio.run(aiohttp_get(f"whoami.{NS}.svc", "/aiohttp")))
attempt("grpc", grpc_say)
names = sys.argv[3:]
out["gai"] = json.loads(subprocess.run([sys.executable, "-c", GAI, *names], check=True,
                                       capture_output=True, text=True).stdout)
out["gai here"] = {}
for name in names:
    try:
        out["gai here"][name] = socket.getaddrinfo(name, 80, socket.AF_INET)[0][4][0]
    except socket.gaierror as exc:
        out["gai here"][name] = [exc.errno, exc.strerror]

time.sleep(max(0.0, IDLE - (time.monotonic() - idle_from)))
out["idle s"] = round(time.monotonic() - idle_from, 1)
attempt("line after", lambda: say("after"))
print("RESULTS " + json.dumps(out), flush=True)
'''
"""The launched process: every client, and the line connection held across the idle time."""


def grpc_app() -> list[Any]:
    """The gRPC server, with this venv's grpcio mounted read-only (cp311: the image's Python
    is 3.11; the testbed is one node on this machine, so a hostPath reaches the venv)."""
    site = sysconfig.get_paths()["purelib"]
    return python_app(
        "grpc-echo", GRPC_APP, port=50051, service_port=50051,
        env=[{"name": "PYTHONPATH", "value": "/venv-site"}],
        volumes=[{"name": "venv-site", "hostPath": {"path": site, "type": "Directory"}}],
        mounts=[{"name": "venv-site", "mountPath": "/venv-site", "readOnly": True}])


def peer(answer: str) -> str:
    """The address a server saw in one of its answers (`… peer=IP …`, gRPC's `ipv4:IP:port`)."""
    word = next(w for w in answer.split() if w.startswith("peer=")).removeprefix("peer=")
    return word.removeprefix("ipv4:").rsplit(":", 1)[0] if word.startswith("ipv4:") else word


def in_pod(cluster: Cluster, namespace: str, app: str, *argv: str) -> str:
    [pod] = cluster.pods(namespace, app)
    return cluster.kubectl("-n", namespace, "exec", pod, "--", *argv, timeout=60).stdout


@dataclass
class Run:
    """What the launched process saw, and where from."""

    namespace: str
    results: dict[str, Any]
    echo_pods: set[str]
    names: list[str]


@pytest.fixture(scope="module")
def run(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One intercept whose command makes every call (60 s of it idle): each test below checks
    one part of what it saw."""
    if sys.version_info[:2] != (3, 11):
        pytest.skip("the pod's Python is 3.11: grpcio from this venv must be cp311")
    namespace = f"e2e-net-more-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("wait", "serviceaccount/default", "-n", namespace, "--for=create",
                    "--timeout=30s")
    laptop = Laptop(cluster)
    try:
        apps = [python_app("lines", LINES_APP, port=7000, service_port=7000),
                python_app("whoami", WHOAMI_APP), grpc_app()]
        cluster.apply(namespace, [obj for app in apps for obj in app])  # they start meanwhile
        cluster.deploy_echo(namespace, replicas=1)
        deploy(cluster, namespace, apps)
        script = tmp_path_factory.mktemp("net-more") / "script.py"
        script.write_text(f"IDLE = {IDLE_SECONDS}\n" + SCRIPT)
        names = [f"nosuch.{namespace}.svc.cluster.local", "whoami.nosuchns.svc.cluster.local",
                 f"nosuch.{namespace}", f"nosuch.{namespace}.svc", HOSTS_NAME, "localhost"]
        proc, lines = laptop.innerloop("intercept", "echo", "-n", namespace, "--port",
                                       f"{LOCAL_PORT}:http", "--", sys.executable, str(script),
                                       namespace, GAI, *names)
        results = json.loads(
            lines.wait_for("RESULTS ", 180 + IDLE_SECONDS).removeprefix("RESULTS "))
        assert proc.wait(30) == 0, lines.text()
        yield Run(namespace, results, pod_ips(cluster, namespace, "echo"), names)
    finally:
        laptop.close()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def answered_from_the_workload(run: Run, label: str, ending: str) -> None:
    """The server answered (whoami or gRPC), saw the intercepted pod's IP, got our request."""
    answer = run.results[label]
    assert answer.startswith(("whoami peer=", "grpc peer=ipv4:")), (label, answer)
    assert answer.endswith(ending), (label, answer)
    assert peer(answer) in run.echo_pods, (label, answer, run.echo_pods)


def test_a_long_lived_connection_survives_60_s_idle(run: Run) -> None:
    """The same connection (the server's number for it) before and after, from the pod."""
    assert run.results["idle s"] >= IDLE_SECONDS
    before, after = run.results["line before"], run.results["line after"]
    assert before.endswith("got=before") and after.endswith("got=after"), (before, after)
    assert before.split()[0] == after.split()[0], (before, after)
    assert {peer(before), peer(after)} <= run.echo_pods, (before, after, run.echo_pods)


def test_httpx_sync(run: Run) -> None:
    answered_from_the_workload(run, "httpx sync", "path=/httpx-sync")


def test_httpx_async(run: Run) -> None:
    """anyio keeps only the address from getaddrinfo and connects to the port it asked for."""
    answered_from_the_workload(run, "httpx async", "path=/httpx-async")


def test_httpx_with_the_proxy_variables(run: Run) -> None:
    """httpx's default (trust_env) reads every proxy variable: none may need an extra."""
    answered_from_the_workload(run, "httpx proxy", "path=/httpx-proxy")


def test_aiohttp(run: Run) -> None:
    answered_from_the_workload(run, "aiohttp", "path=/aiohttp")


def test_a_grpc_unary_call_through_grpc_proxy(run: Run) -> None:
    answered_from_the_workload(run, "grpc", "got=hi")


def test_names_that_are_no_service_fail_as_in_a_pod(cluster: Cluster, run: Run) -> None:
    local, names = run.results["gai here"], run.names
    assert run.results["gai"] == local  # the launched process's child has the hook too
    # In a pod the cluster's DNS is the authority for its FQDNs: EAI_NONAME and its message.
    pod = json.loads(in_pod(cluster, run.namespace, "whoami", "python3", "-c", GAI, *names[:2]))
    assert [local[n] for n in names[:2]] == [pod[n] for n in names[:2]] == [
        [-2, "Name or service not known"]] * 2, (local, pod)
    # A pod tries its search list first, where the cluster's DNS answers NXDOMAIN for
    # `nosuch.<ns>.svc.cluster.local` (above); the hook gives that answer for the short forms.
    # (The testbed's dnsmasq has no upstream for the final absolute query, so a testbed pod
    # ends on EAI_AGAIN there; a cluster whose DNS forwards ends on EAI_NONAME, as here.)
    assert local[names[2]] == local[names[3]] == [-2, "Name or service not known"], local


def test_etc_hosts_and_localhost_resolve_as_before(run: Run) -> None:
    local = run.results["gai here"]
    getent = subprocess.run(dev_netns_argv(["getent", "ahostsv4", HOSTS_NAME]),
                            capture_output=True, text=True, check=True).stdout.split()[0]
    assert local[HOSTS_NAME] == getent == "127.0.0.1"
    assert local["localhost"] == "127.0.0.1"


NETWORK_POLICY = {
    "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
    "metadata": {"name": "echo-not-to-whoami"},
    "spec": {"podSelector": {"matchLabels": {"app": "echo"}}, "policyTypes": ["Egress"],
             "egress": [{"to": [{"podSelector": {"matchExpressions": [
                 {"key": "app", "operator": "NotIn", "values": ["whoami"]}]}}]},
                        {"ports": [{"protocol": "UDP", "port": 53},
                                   {"protocol": "TCP", "port": 53}]}]},
}
"""The echo workload may reach every pod of its namespace except whoami's, and DNS (as real
egress policies allow: without it the pod could not even look the names up)."""

REACH = r'''
import json, socket, sys
out = {}
for host in sys.argv[1:]:
    try:
        with socket.create_connection((host, 80), timeout=5) as s:
            s.sendall(b"GET /policy HTTP/1.0\r\nHost: x\r\n\r\n")
            out[host] = "answered" if s.recv(100).startswith(b"HTTP/") else "silent"
    except OSError as exc:
        out[host] = f"failed {type(exc).__name__}"
print("REACH " + json.dumps(out), flush=True)
'''
"""Connect to each Service on port 80 and ask; what happened."""


def test_a_network_policy_that_denies_the_workload_denies_the_local_process(
    cluster: Cluster, namespace: str, laptop: Laptop, tmp_path: Path
) -> None:
    cluster.deploy_echo(namespace, replicas=1)
    deploy(cluster, namespace, [python_app("whoami", WHOAMI_APP), python_app("other", WHOAMI_APP)])
    targets = [f"whoami.{namespace}", f"other.{namespace}"]

    def reach_from_workload() -> dict[str, str]:
        out = in_pod(cluster, namespace, "echo", "python3", "-c", REACH, *targets)
        return dict(json.loads(out.removeprefix("REACH ")))

    def settled(done: Callable[[dict[str, str]], bool], seconds: float) -> dict[str, str]:
        """Endpoints and the policy engine both catch up asynchronously."""
        deadline = time.monotonic() + seconds
        while not done(seen := reach_from_workload()) and time.monotonic() < deadline:
            time.sleep(1)
        return seen

    before = settled(lambda seen: set(seen.values()) == {"answered"}, 60)
    assert set(before.values()) == {"answered"}, before  # both reachable before the policy
    cluster.apply(namespace, [NETWORK_POLICY])
    in_workload = settled(lambda seen: seen[targets[0]] != "answered", 20)
    if in_workload[targets[0]] == "answered":
        pytest.skip("this cluster does not enforce NetworkPolicy (the testbed runs kube-router "
                    "unless INNERLOOP_TESTBED_NETWORK_POLICY=none: tools/testbed/policy.py)")
    assert in_workload == {targets[0]: in_workload[targets[0]], targets[1]: "answered"}
    script = tmp_path / "reach.py"
    script.write_text(REACH)
    proc, lines = laptop.innerloop("intercept", "echo", "-n", namespace, "--port",
                                   f"{LOCAL_PORT}:http", "--", sys.executable, str(script),
                                   *targets)
    local = json.loads(lines.wait_for("REACH ", 180).removeprefix("REACH "))
    assert proc.wait(30) == 0, lines.text()
    assert local[targets[1]] == "answered", local
    assert local[targets[0]] != "answered", local  # denied, as from the workload's pod
