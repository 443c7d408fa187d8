"""The resolver hook in real child interpreters, answered by a real ControlServer.

The test's "cluster" is a name table (core.cluster_names) whose one Service, payments.shop
(ClusterIP 198.19.7.7, port 80), is forwarded to a local HTTP echo server on 127.0.0.1: a
child that reaches the echo server by a cluster name went through the hook. Every child first
replaces the hook's originals (`socket.<fn>.__wrapped__`, the only way the hook reaches the
system resolver) with spies that record the name and never resolve anything but localhost; a
child whose hook is not active fails on the missing `__wrapped__`.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import textwrap
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from innerloop.clusternet.control import ControlServer, control_path
from innerloop.clusternet.env import HOOK_DIR, hook_env
from innerloop.core.cluster_names import (
    LOOPBACK,
    Cluster,
    ClusterNames,
    ClusterService,
    LocalAddress,
    NamedPort,
    NotCluster,
    NotFound,
    ResolveRequest,
    ResolveResult,
    ServiceKey,
    encode_request,
    parse_result,
)

pytestmark = pytest.mark.integration
PYTHON = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "python")
CLUSTER_IP = "198.19.7.7"  # TEST-NET (benchmarking) range: never routed here
TIMEOUT = 30.0

SPY = """
import json, socket, sys
SPIED = []
def _spy(name):
    fn = getattr(socket, name)
    real = fn.__wrapped__  # AttributeError: the hook is not active
    def spy(host, *args):
        SPIED.append(host if isinstance(host, str) else repr(host))
        if host != "localhost":
            raise socket.gaierror(socket.EAI_NONAME, "spy: the system resolver was asked")
        return real(host, *args)
    fn.__wrapped__ = spy
for _name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex"):
    _spy(_name)
def out(**kw):
    print(json.dumps(dict(kw, spied=SPIED)))
"""


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = f"echo {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class Table:
    """The forwarder table a test plugs in: names → the echo server; every question kept."""

    def __init__(self, echo_port: int) -> None:
        self.names = ClusterNames(
            [ClusterService(ServiceKey("shop", "payments"), (CLUSTER_IP,), (NamedPort(80),))],
            namespace="shop",
        )
        self.echo_port = echo_port
        self.asked: list[tuple[str, int | None]] = []

    def resolve(self, host: str, port: int | None) -> ResolveResult:
        self.asked.append((host, port))
        answer = self.names.lookup(host, port)
        if isinstance(answer, Cluster):
            return LocalAddress(LOOPBACK, self.echo_port if answer.port else 0)
        return answer


@pytest.fixture
async def cluster(echo_port: int, tmp_path: Path) -> AsyncIterator[tuple[Table, Path]]:
    table = Table(echo_port)
    path = tmp_path / "net" / "c.sock"
    async with ControlServer(path, table.resolve):
        yield table, path


def child_env(control: Path, pythonpath: str | None = None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.lower().endswith("_proxy") and k not in ("PYTHONPATH", "INNERLOOP_NET")}
    if pythonpath is not None:
        base["PYTHONPATH"] = pythonpath
    return {**base, **hook_env(control, base)}


async def run(code: str, env: dict[str, str], python: str = PYTHON) -> dict[str, Any]:
    """Run `code` (after SPY) in a child; its last stdout line is a JSON object."""
    proc = await asyncio.create_subprocess_exec(
        python, "-c", SPY + textwrap.dedent(code), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, err.decode()
    assert err == b"", err.decode()
    result: dict[str, Any] = json.loads(out.decode().splitlines()[-1])
    return result


_CLIENTS = {
    "urllib": """
        import urllib.request
        body = urllib.request.urlopen("http://payments/x", timeout=10).read().decode()
    """,
    "requests": """
        import requests
        body = requests.get("http://payments.shop/x", timeout=10).text
    """,
    "httpx": """
        import httpx
        body = httpx.get("http://payments.shop.svc.cluster.local/x", timeout=10).text
    """,
    "httpx-async": """
        import asyncio, httpx
        async def main():
            async with httpx.AsyncClient(timeout=10) as client:
                return (await client.get("http://payments.shop.svc/x")).text
        body = asyncio.run(main())
    """,
    "aiohttp": """
        import asyncio, aiohttp
        async def main():
            async with aiohttp.ClientSession() as session:
                async with session.get("http://payments.shop.svc.cluster.local./x") as r:
                    return await r.text()
        body = asyncio.run(main())
    """,
    "asyncio-name": """
        import asyncio
        async def main():
            reader, writer = await asyncio.open_connection("payments.shop", 80)
            writer.write(b"GET /x HTTP/1.1\\r\\nHost: payments\\r\\nConnection: close\\r\\n\\r\\n")
            data = await reader.read()
            writer.close()
            return data.decode().split("\\r\\n\\r\\n", 1)[1]
        body = asyncio.run(main())
    """,
    "asyncio-clusterip": """
        import asyncio
        async def main():
            reader, writer = await asyncio.open_connection("198.19.7.7", 80)
            writer.write(b"GET /x HTTP/1.1\\r\\nHost: payments\\r\\nConnection: close\\r\\n\\r\\n")
            data = await reader.read()
            writer.close()
            return data.decode().split("\\r\\n\\r\\n", 1)[1]
        body = asyncio.run(main())
    """,
    "create_connection-clusterip": """
        with socket.create_connection(("198.19.7.7", 80), timeout=10) as s:
            s.sendall(b"GET /x HTTP/1.1\\r\\nHost: payments\\r\\nConnection: close\\r\\n\\r\\n")
            body = s.makefile("rb").read().decode().split("\\r\\n\\r\\n", 1)[1]
    """,
    "raw-connect-name": """
        with socket.socket() as s:
            s.settimeout(10)
            s.connect(("payments", 80))
            s.sendall(b"GET /x HTTP/1.1\\r\\nHost: payments\\r\\nConnection: close\\r\\n\\r\\n")
            body = s.makefile("rb").read().decode().split("\\r\\n\\r\\n", 1)[1]
    """,
    "ipv6-only-ask": """
        [(family, kind, proto, _, addr)] = socket.getaddrinfo("payments", 80, socket.AF_INET6)
        with socket.socket(family, kind, proto) as s:  # dual-stack: reaches 127.0.0.1
            s.settimeout(10)
            s.connect(addr)
            s.sendall(b"GET /x HTTP/1.1\\r\\nHost: payments\\r\\nConnection: close\\r\\n\\r\\n")
            body = s.makefile("rb").read().decode().split("\\r\\n\\r\\n", 1)[1]
    """,
    "grandchild": """
        import subprocess
        code = "import urllib.request; print(urllib.request.urlopen('http://payments/x').read().decode())"
        body = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, timeout=20).stdout.strip()
    """,
}
CLIENTS = {name: textwrap.dedent(code) for name, code in _CLIENTS.items()}


@pytest.mark.parametrize("client", sorted(CLIENTS))
async def test_a_client_reaches_a_cluster_name(cluster: tuple[Table, Path], client: str) -> None:
    table, path = cluster
    result = await run(CLIENTS[client] + "\nout(body=body)\n", child_env(path))
    assert result == {"body": "echo /x", "spied": []}
    assert table.asked, "the hook never asked the control socket"


async def test_answers_are_cached_per_host_and_port(cluster: tuple[Table, Path]) -> None:
    table, path = cluster
    result = await run("""
        first = [socket.getaddrinfo("payments", 80, type=socket.SOCK_STREAM) for _ in range(3)]
        out(addr=first[0][0][4], same=first[0] == first[2],
            byname=socket.gethostbyname("payments"),
            ex=socket.gethostbyname_ex("payments"),
            any_type=[(f, t, p) for f, t, p, _, _ in socket.getaddrinfo("payments", "80")])
    """, child_env(path))
    alias = result["byname"]
    assert alias.startswith("127.243.")  # the name's address; connect() maps it to the forwarder
    assert result["addr"] == [alias, 80] and result["same"] is True
    assert result["ex"] == ["payments", [], [alias]]
    assert result["any_type"] == [[socket.AF_INET, socket.SOCK_STREAM, 6]]  # TCP only
    assert result["spied"] == []
    assert table.asked.count(("payments", 80)) == 1
    assert table.asked.count(("payments", None)) == 1


async def test_missing_cluster_names_fail_as_in_a_pod_without_the_system_resolver(
    cluster: tuple[Table, Path],
) -> None:
    _, path = cluster
    result = await run("""
        def error(fn, *args):
            try:
                fn(*args)
            except socket.gaierror as e:
                return [e.errno, e.strerror]
            return "resolved"
        out(
            gai=error(socket.getaddrinfo, "nosuch.shop.svc.cluster.local", 80),
            ns=error(socket.getaddrinfo, "nosuch.shop", 80),
            port=error(socket.getaddrinfo, "payments", 81),
            byname=error(socket.gethostbyname, "nosuch.shop.svc"),
            ex=error(socket.gethostbyname_ex, "nosuch.shop.svc.cluster.local"),
            connect=error(socket.create_connection, ("nosuch.shop.svc.cluster.local", 80)),
            udp=error(socket.getaddrinfo, "payments", 80, 0, socket.SOCK_DGRAM),
            localhost=socket.getaddrinfo("localhost", 80),
            outside=error(socket.getaddrinfo, "example.invalid", 80),
        )
    """, child_env(path))
    noname = [socket.EAI_NONAME, "Name or service not known"]
    assert {k: result[k] for k in ("gai", "ns", "port", "byname", "ex", "connect")} == dict.fromkeys(
        ("gai", "ns", "port", "byname", "ex", "connect"), noname)
    assert result["udp"] == [socket.EAI_SERVICE, "Servname not supported for ai_socktype"]
    assert result["localhost"] == json.loads(json.dumps(socket.getaddrinfo("localhost", 80)))
    assert result["outside"] == [socket.EAI_NONAME, "spy: the system resolver was asked"]
    assert result["spied"] == ["localhost", "example.invalid"]  # and nothing else


async def test_with_the_control_socket_gone_cluster_names_fail_fast(tmp_path: Path) -> None:
    result = await run("""
        import time
        start = time.monotonic()
        errors = []
        for host in ("nosuch.shop.svc.cluster.local", "payments.shop.svc", "Payments.Shop.SVC."):
            try:
                socket.getaddrinfo(host, 80)
            except socket.gaierror as e:
                errors.append(e.errno)
        out(errors=errors, seconds=time.monotonic() - start,
            localhost=bool(socket.getaddrinfo("localhost", 80)))
    """, child_env(tmp_path / "gone.sock"))
    assert result["errors"] == [socket.EAI_NONAME] * 3
    assert result["seconds"] < 1.0
    assert result["localhost"] is True
    assert result["spied"] == ["localhost"]


async def test_a_users_sitecustomize_still_runs(cluster: tuple[Table, Path],
                                                tmp_path: Path) -> None:
    _, path = cluster
    user = tmp_path / "user"
    user.mkdir()
    (user / "sitecustomize.py").write_text("import os\nos.environ['USER_SITECUSTOMIZE'] = 'ran'\n")
    env = child_env(path, pythonpath=str(user))
    assert env["PYTHONPATH"] == os.pathsep.join([str(HOOK_DIR), str(user)])
    result = await run("""
        import os, sitecustomize
        out(ran=os.environ.get("USER_SITECUSTOMIZE"), module=sitecustomize.__file__,
            addr=socket.gethostbyname("payments"))
    """, env)
    assert result["addr"].startswith("127.243.")
    assert result == {"ran": "ran", "module": str(user / "sitecustomize.py"),
                      "addr": result["addr"], "spied": []}


async def test_without_innerloop_net_the_hook_only_chains(tmp_path: Path) -> None:
    user = tmp_path / "user"
    user.mkdir()
    (user / "sitecustomize.py").write_text("import os\nos.environ['USER_SITECUSTOMIZE'] = 'ran'\n")
    env = child_env(tmp_path / "x.sock", pythonpath=str(user))
    del env["INNERLOOP_NET"]
    proc = await asyncio.create_subprocess_exec(
        PYTHON, "-c", "import os, socket; print(hasattr(socket.getaddrinfo, '__wrapped__'), "
        "os.environ.get('USER_SITECUSTOMIZE'))", env=env, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert out.decode().split() == ["False", "ran"]


def _interpreters() -> list[str]:
    """The project's, and older/newer ones if this machine has them (the hook is 3.8+)."""
    found = [PYTHON]
    versions = Path.home() / ".pyenv" / "versions"
    for version in ("3.8", "3.13"):
        found += [str(p) for p in sorted(versions.glob(f"{version}.*/bin/python3"))][:1]
    return found


@pytest.mark.parametrize("python", _interpreters())
async def test_the_hook_runs_on_other_interpreters(cluster: tuple[Table, Path],
                                                   python: str) -> None:
    _, path = cluster
    result = await run(CLIENTS["urllib"] + "\nout(body=body)\n", child_env(path), python=python)
    assert result == {"body": "echo /x", "spied": []}


# ---- the control server on its own ---------------------------------------------------------

async def test_control_socket_is_private_and_serves_many_requests(tmp_path: Path) -> None:
    async def resolve(host: str, port: int | None) -> ResolveResult:
        if host == "boom":
            raise RuntimeError("forwarder failed")
        return NotFound() if host.endswith(".svc") else NotCluster()

    path = tmp_path / "private" / "c.sock"
    server = ControlServer(path, resolve)
    await server.start()
    try:
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        reader, writer = await asyncio.open_unix_connection(str(path))
        replies = []
        for line in (encode_request_line("x.svc"), b"garbage\n", encode_request_line("example.com"),
                     encode_request_line("boom")):
            writer.write(line)
            replies.append(json.loads(await reader.readline()))
        assert replies[0] == {"ok": False, "error": "noname"}
        assert replies[1]["error"] == "failed" and "not a JSON line" in replies[1]["message"]
        assert replies[2] == {"ok": False, "error": "notcluster"}
        assert replies[3]["error"] == "failed" and "forwarder failed" in replies[3]["message"]
        writer.write(b"x" * 10_000 + b"\n")  # over the line limit: one error, then closed
        assert json.loads(await reader.readline())["error"] == "failed"
        assert await reader.read() == b""
        writer.close()
        idle = await asyncio.open_unix_connection(str(path))  # closing ends idle clients too
        idle[1].write(encode_request_line("example.com"))
        assert json.loads(await idle[0].readline()) == {"ok": False, "error": "notcluster"}
    finally:
        await server.close()
    assert not path.exists()
    assert await idle[0].read() == b""
    idle[1].close()
    await server.close()  # twice is fine


def encode_request_line(host: str) -> bytes:
    return encode_request(ResolveRequest(host, 80))


async def test_a_sync_resolve_plugs_in_too(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    (tmp_path / "c.sock").write_text("stale")  # left by a crashed run
    async with ControlServer(path, lambda host, port: LocalAddress(LOOPBACK, port or 1)):
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(encode_request_line("payments"))
        assert parse_result(await reader.readline()) == LocalAddress(LOOPBACK, 80)
        writer.close()


def test_control_path_is_in_the_private_runtime_dir(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    path = control_path()
    assert path.parent == tmp_path / "innerloop-net" and path.suffix == ".sock"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert control_path("abc").name == "abc.sock" and control_path() != path
    assert len(str(path).encode()) < 104  # sun_path on macOS


def test_hook_env_keeps_the_users_pythonpath_once() -> None:
    env = hook_env(Path("/run/x.sock"), {"PYTHONPATH": f"/a{os.pathsep}{HOOK_DIR}{os.pathsep}/b"})
    assert env == {"PYTHONPATH": os.pathsep.join([str(HOOK_DIR), "/a", "/b"]),
                   "INNERLOOP_NET": "/run/x.sock"}
    assert hook_env(Path("/s"), {})["PYTHONPATH"] == str(HOOK_DIR)
    assert (HOOK_DIR / "sitecustomize.py").is_file()


def test_the_hook_adds_little_to_interpreter_start(tmp_path: Path) -> None:
    """No `typing`, no `json` (imported at the first question): only what `socket` needs."""
    import subprocess

    code = "import sys; print(' '.join(sorted(sys.modules)))"
    env = child_env(tmp_path / "x.sock")
    plain = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "INNERLOOP_NET")}
    modules = [set(subprocess.run([PYTHON, "-c", code], env=e, capture_output=True, text=True,
                                  check=True).stdout.split()) for e in (plain, env)]
    added = modules[1] - modules[0]
    assert "sitecustomize" in added and "socket" in added
    assert not added & {"typing", "json", "importlib.util"}, added
