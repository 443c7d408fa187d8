"""The kube-proxy probe against a real agent (the built zipapp, as a subprocess).

"The ClusterIP" is a loopback forwarder whose destination the test flips from the app to the
agent's listen port, as kube-proxy does some time after a takeover; the probe must notice the
flip, and none of its connections may reach the laptop's local server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from innerloop.agent.zipapp import agent_bundle
from innerloop.core.request import WhilePaused
from innerloop.intercepts.kube_proxy import Probe
from innerloop.tunnel.client import TunnelClient
from innerloop.tunnel.transport import TcpTransport

from tools.net import free_ports
from tools.wait import wait_until

pytestmark = pytest.mark.integration
AGENT_PYTHON = os.environ.get("INNERLOOP_AGENT_PYTHON", sys.executable)


@dataclass
class Node:
    """The app, the agent in front of it, a "ClusterIP" forwarder, and the laptop's server."""

    tmp: Path
    target: int = 0
    """Where the forwarder sends new connections (the app, later the agent's route)."""
    laptop_connections: int = 0
    servers: list[asyncio.Server] = field(default_factory=list)

    async def serve(self, handler: object) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)  # type: ignore[arg-type]
        self.servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def app(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    async def laptop(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.laptop_connections += 1
        writer.close()

    async def forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@contextlib.asynccontextmanager
async def node(tmp: Path) -> AsyncIterator[tuple[Node, TunnelClient, int, int, int]]:
    """(node, client with a paused claim, route port, health port, "ClusterIP" port)"""
    n = Node(tmp)
    app = await n.serve(n.app)
    local = await n.serve(n.laptop)
    n.target = app
    cluster_ip_port = await n.serve(n.forward)
    route, tunnel, health = free_ports(3)
    pyz = tmp / "agent.pyz"
    pyz.write_bytes(agent_bundle()[1])
    log_path = tmp / "agent.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            AGENT_PYTHON, "-I", "-S", str(pyz), "--tunnel-port", str(tunnel), "--health-port",
            str(health), "--route", f"{route}:{app}", stdout=log, stderr=log)
    client: TunnelClient | None = None
    try:
        await wait_until(lambda: "ready: " in log_path.read_text(), "the agent to start", 10)
        client = TunnelClient(await TcpTransport.connect("127.0.0.1", tunnel), "alice@lap:1",
                              name="pod-1")
        await client.start()
        await client.set_paused(True, WhilePaused.CLUSTER)
        await client.claim(route, local)
        yield n, client, route, health, cluster_ip_port
    finally:
        if client is not None:
            await client.aclose()
        proc.terminate()
        await proc.wait()
        for server in n.servers:
            server.close()
    assert "Traceback" not in log_path.read_text()


async def test_the_probe_waits_for_the_flip_and_never_reaches_the_laptop(tmp_path: Path) -> None:
    async with node(tmp_path) as (n, client, route, health, cluster_ip_port):
        probe = await Probe.start([client], health, route)
        assert probe is not None
        service = {"spec": {"clusterIP": "127.0.0.1"}}
        waiting = asyncio.ensure_future(probe.wait(service, cluster_ip_port, 10.0))
        await asyncio.sleep(0.4)
        assert not waiting.done()  # connections still reach the app directly
        n.target = route  # kube-proxy caught up
        assert await asyncio.wait_for(waiting, 2.0)
        assert n.laptop_connections == 0


async def test_the_probe_gives_up_after_its_timeout(tmp_path: Path) -> None:
    async with node(tmp_path) as (_, client, route, health, cluster_ip_port):
        probe = await Probe.start([client], health, route)
        assert probe is not None
        service = {"spec": {"clusterIP": "127.0.0.1"}}
        assert not await probe.wait(service, cluster_ip_port, 0.3)
        assert not await probe.wait({"spec": {"clusterIP": "None"}}, cluster_ip_port, 0.3)


async def test_an_agent_without_the_counter_cannot_be_probed(tmp_path: Path) -> None:
    async with node(tmp_path) as (_, client, route, _health, cluster_ip_port):
        # The "health port" here answers nothing like an agent: no probe, the caller waits.
        assert await Probe.start([client], cluster_ip_port, route) is None


async def test_only_the_pod_itself_may_count_arrivals() -> None:
    """The health port listens on every address (the kubelet probes it); the count answers
    only callers on loopback, i.e. in the pod (the agent's own DIAL)."""
    from innerloop.agent.health import serve_health

    server = await asyncio.start_server(
        lambda r, w: serve_health(r, w, arrivals={15401: 7}), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def ask(source: str, path: str) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                       local_addr=(source, 0))
        writer.write(f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
        answer = await reader.read()
        writer.close()
        return answer

    try:
        assert (await ask("127.0.0.1", "/arrivals/15401")).endswith(b"\r\n\r\n7\n")
        assert (await ask("127.0.0.1", "/arrivals/9")).endswith(b"\r\n\r\n0\n")
        assert (await ask("127.0.0.2", "/arrivals/15401")).startswith(b"HTTP/1.1 404")
        assert (await ask("127.0.0.2", "/healthz")).startswith(b"HTTP/1.1 200")
    finally:
        server.close()
