"""Forwarders and their upstreams over real loopback sockets (docs/network.md, "Forwarders and
upstreams").

The agent is the real zipapp subprocess and the tunnels are real TunnelClients, as in
test_tunnel_dial.py (whose `Cluster` this reuses); "the Service" is a loopback server the agent
dials at its "ClusterIP" 127.0.0.1. The local process is this test, connecting to the
forwarder's loopback port as the resolver hook would send it. The port-forward upstream gets a
gateway whose port-forwards are plain TCP connections to loopback "pods".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from innerloop.clusternet.forwarders import Forwarders
from innerloop.clusternet.upstreams import (
    PortForwardUpstream,
    TunnelDialer,
    TunnelUpstream,
    Upstream,
)
from innerloop.core.cluster_names import ClusterService, LocalAddress, NamedPort, ServiceKey
from innerloop.tunnel.client import TunnelClient
from innerloop.tunnel.transport import TcpTransport, Transport

from tests.integration.test_tunnel_dial import TIMEOUT, Cluster, echo, running_agent
from tools.net import free_ports
from tools.wait import wait_until

pytestmark = pytest.mark.integration
KEY = ServiceKey("shop", "payments")
FORWARDERS_LOG = "innerloop.clusternet.forwarders"




async def tunnel(c: Cluster, name: str) -> TunnelClient:
    """A connected tunnel to the agent, named as the manager names it (the pod)."""
    client = TunnelClient(await TcpTransport.connect("127.0.0.1", c.tunnel), f"alice@lap:{name}",
                          name=name)
    c.clients.append(client)
    await client.start()
    return client


def services(*ports: int) -> Callable[[ServiceKey], ClusterService | None]:
    """`payments.shop` with ClusterIP 127.0.0.1 and these ports (where the agent dials)."""
    svc = ClusterService(KEY, ("127.0.0.1",), tuple(NamedPort(p, f"p{p}") for p in ports))
    return lambda key: svc if key == KEY else None


def through(clients: Sequence[TunnelDialer], *ports: int) -> TunnelUpstream:
    return TunnelUpstream(lambda: clients, services(*ports), "cluster.local")


async def ask(local: LocalAddress, payload: bytes) -> bytes:
    """One connection to the forwarder: send, half-close, read the whole answer."""
    reader, writer = await asyncio.open_connection(local.host, local.port)
    writer.write(payload)
    writer.write_eof()
    try:
        return await asyncio.wait_for(reader.read(-1), TIMEOUT)
    finally:
        writer.close()


async def reset_seen(local: LocalAddress) -> str:
    """Connect to the forwarder and read: what the local client sees when no upstream comes."""
    reader, writer = await asyncio.open_connection(local.host, local.port)
    try:
        data = await asyncio.wait_for(reader.read(-1), TIMEOUT)
    except ConnectionResetError:
        return "reset"
    finally:
        writer.close()
    return f"read {data!r}"


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == FORWARDERS_LOG and r.levelno == logging.WARNING]


@contextlib.asynccontextmanager
async def forwarders(upstream: Upstream, changes: list[int] | None = None
                     ) -> AsyncIterator[Forwarders]:
    fwd = Forwarders(upstream, on_change=lambda: changes.append(1) if changes is not None
                     else None)
    try:
        yield fwd
    finally:
        await fwd.aclose()


async def test_a_forwarder_is_made_on_the_first_resolve_and_reused(tmp_path: Path) -> None:
    async with running_agent(tmp_path / "a") as c:
        client = await tunnel(c, "pod-a")
        first, second = await c.serve(echo), await c.serve(echo)
        changes: list[int] = []
        async with forwarders(through([client], first, second), changes) as fwd:
            assert fwd.mappings() == []
            # Ten lookups at once (a threaded client resolving in parallel): one listener.
            answers = await asyncio.gather(*(fwd.address(KEY, first) for _ in range(10)))
            assert len(set(answers)) == 1
            local = answers[0]
            assert local.host == "127.0.0.1" and local.port not in (first, second)
            assert await fwd.address(KEY, first) == local
            other = await fwd.address(KEY, second)
            assert other != local
            assert [(m.service, m.port, m.local) for m in fwd.mappings()] == sorted(
                [(KEY, first, local), (KEY, second, other)], key=lambda m: m[1])
            assert len(changes) == 2  # one per forwarder made, none for the reuses
            assert await ask(local, b"via the first") == b"via the first"
            assert await ask(other, b"via the second") == b"via the second"
            assert await ask(local, b"again") == b"again"  # the same listener, still there
        with pytest.raises(OSError):  # closed with the network
            await asyncio.open_connection(local.host, local.port)


async def test_connections_lists_the_live_outbound_connections(tmp_path: Path) -> None:
    async with running_agent(tmp_path / "a") as c:
        client = await tunnel(c, "pod-a")
        port = await c.serve(echo)
        async with forwarders(through([client], port)) as fwd:
            local = await fwd.address(KEY, port)
            held = [await asyncio.open_connection(local.host, local.port) for _ in range(3)]
            for i, (reader, writer) in enumerate(held):  # each is connected end to end
                writer.write(b"ping %d" % i)
                assert await asyncio.wait_for(reader.read(100), TIMEOUT) == b"ping %d" % i
            await wait_until(lambda: len(fwd.connections()) == 3, "3 live connections", 5)
            listed = fwd.connections()
            assert {(x.service, x.port, x.via) for x in listed} == {(KEY, port, "agent pod-a")}
            assert sorted(x.client for x in listed) == sorted(
                f"127.0.0.1:{w.get_extra_info('sockname')[1]}" for _, w in held)
            reader, writer = held.pop(0)  # the local process closes one
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(-1), TIMEOUT) == b""
            writer.close()
            await wait_until(lambda: len(fwd.connections()) == 2, "the closed one to go", 5)
            await fwd.aclose()  # closing the network resets the rest
            for reader, writer in held:
                with pytest.raises(ConnectionResetError):
                    await asyncio.wait_for(reader.read(-1), TIMEOUT)
                writer.close()
            assert fwd.connections() == []


async def test_an_upstream_failure_resets_the_local_client_with_one_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, FORWARDERS_LOG)
    (closed,) = free_ports(1)
    async with running_agent(tmp_path / "a") as c:
        client = await tunnel(c, "pod-a")
        async with forwarders(through([client], closed)) as fwd:
            local = await fwd.address(KEY, closed)
            assert await reset_seen(local) == "reset"
            refused = f"agent pod-7 cannot reach 127.0.0.1:{closed}: connection refused"
            assert warnings(caplog) == [f"payments.shop:{closed}: {refused}"]  # pod-7: the agent
            assert fwd.connections() == []
            port = await c.serve(echo)  # the forwarder still serves the next connection
            fwd2 = await fwd.address(KEY, port)
            assert await ask(fwd2, b"next") == b"next"
            assert len(warnings(caplog)) == 1


async def test_no_connected_tunnel_resets_the_local_client_with_one_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, FORWARDERS_LOG)
    async with forwarders(through([], 80)) as fwd:
        assert await reset_seen(await fwd.address(KEY, 80)) == "reset"
    assert warnings(caplog) == [
        "payments.shop:80: no tunnel to the workload's agent is connected"]


async def test_connections_go_round_robin_over_the_tunnels(tmp_path: Path) -> None:
    async with running_agent(tmp_path / "a") as a, running_agent(tmp_path / "b") as b:
        clients = [await tunnel(a, "pod-a"), await tunnel(b, "pod-b")]
        port = await a.serve(echo)
        async with forwarders(through(clients, port)) as fwd:
            local = await fwd.address(KEY, port)
            held = []
            for count in range(1, 7):
                held.append(await asyncio.open_connection(local.host, local.port))
                await wait_until(lambda n=count: len(fwd.connections()) == n, "connected", 5)
            assert [x.via for x in fwd.connections()] == ["agent pod-a", "agent pod-b"] * 3
            for reader, writer in held:
                writer.write(b"x")
                assert await asyncio.wait_for(reader.read(1), TIMEOUT) == b"x"
                writer.close()


async def test_a_tunnel_that_is_down_is_skipped(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, FORWARDERS_LOG)
    async with running_agent(tmp_path / "a") as a, running_agent(tmp_path / "b") as b:
        down, up = await tunnel(b, "pod-b"), await tunnel(a, "pod-a")
        assert b.proc is not None
        b.proc.kill()  # the pod went away; the manager has not dropped its tunnel yet
        await asyncio.wait_for(down.wait_closed(), TIMEOUT)
        port = await a.serve(echo)
        async with forwarders(through([down, up], port)) as fwd:
            local = await fwd.address(KEY, port)
            answers = await asyncio.gather(*(ask(local, b"n%d" % i) for i in range(8)))
            assert answers == [b"n%d" % i for i in range(8)]
            assert warnings(caplog) == []
            assert {x.via for x in fwd.connections()} <= {"agent pod-a"}
        async with forwarders(through([down], port)) as fwd:  # no tunnel left: one warning
            assert await reset_seen(await fwd.address(KEY, port)) == "reset"
        [warning] = warnings(caplog)
        assert warning.startswith(f"payments.shop:{port}: tunnel to pod-b closed"), warning


async def test_the_agents_refusal_is_final_not_retried_on_another_tunnel(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, FORWARDERS_LOG)
    (closed,) = free_ports(1)
    async with running_agent(tmp_path / "a") as a, running_agent(tmp_path / "b") as b:
        clients = [await tunnel(a, "pod-a"), await tunnel(b, "pod-b")]
        async with forwarders(through(clients, closed)) as fwd:
            assert await reset_seen(await fwd.address(KEY, closed)) == "reset"
        refusal = f"to 127.0.0.1:{closed}: connection refused"
        await wait_until(lambda: refusal in a.log(), "pod-a's agent to log the refusal", 5)
        assert refusal not in b.log()
        assert len(warnings(caplog)) == 1


class LoopbackGateway:
    """Port-forwards that are plain TCP connections to loopback servers named as pods."""

    def __init__(self, pods: dict[str, int], not_ready: Sequence[str] = ()) -> None:
        self.pods = pods
        self.not_ready = set(not_ready)
        self.forwards: list[str] = []

    async def endpoint_slices(self, namespace: str, service: str) -> list[dict[str, Any]]:
        assert (namespace, service) == (KEY.namespace, KEY.name)
        return [{"ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                 "endpoints": [{"targetRef": {"kind": "Pod", "name": pod},
                                "conditions": {"ready": pod not in self.not_ready}}
                               for pod in self.pods]}]

    async def port_forward(self, namespace: str, pod: str, port: int) -> Transport:
        assert port == 8080  # the targetPort, not the Service port
        self.forwards.append(pod)
        return await TcpTransport.connect("127.0.0.1", self.pods[pod])


async def named_echo(name: str) -> tuple[asyncio.Server, int]:
    """A "pod" that answers `<name>: <what it got>` and closes (a port-forward carries no
    half-close, so it answers the first bytes)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(name.encode() + b": " + await reader.read(100))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


async def test_port_forwards_go_round_robin_over_the_ready_pods(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, FORWARDERS_LOG)
    pods = {name: await named_echo(name) for name in ("web-1", "web-2", "web-3")}
    gateway = LoopbackGateway({n: p for n, (_, p) in pods.items()}, not_ready=["web-2"])
    svc = ClusterService(KEY, ("198.19.0.9",), (NamedPort(80, "http"),))
    upstream = PortForwardUpstream(gateway, lambda key: svc if key == KEY else None)
    async with forwarders(upstream) as fwd:
        local = await fwd.address(KEY, 80)
        answers = [await ask(local, b"q%d" % i) for i in range(4)]
        assert answers == [b"web-1: q0", b"web-3: q1", b"web-1: q2", b"web-3: q3"]
        assert gateway.forwards == ["web-1", "web-3"] * 2
        gateway.not_ready = set(gateway.pods)
        assert await reset_seen(local) == "reset"
        assert await reset_seen(await fwd.address(KEY, 81)) == "reset"
    await upstream.aclose()
    assert warnings(caplog) == [
        "payments.shop:80: service payments.shop has no Ready pod behind port 80",
        "payments.shop:81: service payments.shop has no port 81"]
    for server, _ in pods.values():
        server.close()
