"""Tunnel client ↔ agent over real loopback sockets, no cluster.

The agent runs as a real subprocess from the built zipapp (``python -I -S agent.pyz``, so
nothing from the venv helps it), in front of a throwaway HTTP app; the "laptop" is a
TunnelClient over TcpTransport with its own local HTTP app.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h11
import pytest
from innerloop.agent.zipapp import agent_bundle
from innerloop.core.filters import AppProtocol, Mode, filter_from_json
from innerloop.core.frame_decoder import decode_all
from innerloop.core.frames import ClaimEntry, Hello, encode
from innerloop.core.mux_client import ClientConnection
from innerloop.core.mux_events import DataReceived, StreamOpened, StreamReset
from innerloop.core.request import WhilePaused
from innerloop.core.targets import ServiceSummary
from innerloop.intercepts.claims import claims_table
from innerloop.tunnel.client import TunnelClient
from innerloop.tunnel.errors import InterceptConflict, TunnelError
from innerloop.tunnel.transport import TcpTransport

from tests.helpers.http_app import HttpApp
from tools.net import free_ports
from tools.wait import wait_until

pytestmark = pytest.mark.integration
TIMEOUT = 10.0
AGENT_PYTHON = os.environ.get("INNERLOOP_AGENT_PYTHON", sys.executable)  # e.g. a python3.10


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


class App(HttpApp):
    """An app that says who it is, one request a connection.

    ``/echo`` returns the body, ``/big/N`` returns N bytes, ``/stall`` answers only after
    ``release`` is set, ``/stall-unread`` does not even read its body until then; anything
    else answers "<who> <method> <path> <body length> <body digest>".
    """

    def __init__(self, who: str) -> None:
        super().__init__(who)
        self.release = asyncio.Event()
        self.stalled = 0

    async def serve(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        request: h11.Request | None = None
        body = bytearray()
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Request):
                    request = event
                    if event.target == b"/stall-unread":
                        self.stalled += 1
                        await self.release.wait()
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:
                    return
            assert request is not None
            path = request.target.decode()
            if path == "/stall":
                self.stalled += 1
                await self.release.wait()
            if path == "/echo":
                payload = bytes(body)
            elif path.startswith("/big/"):
                payload = bytes(range(256)) * (int(path[5:]) // 256)
            else:
                payload = (f"{self.who} {request.method.decode()} {path} {len(body)} "
                           f"{digest(bytes(body))}").encode()
            headers = [("content-length", str(len(payload))), ("connection", "close")]
            writer.write(conn.send(h11.Response(status_code=200, headers=headers)))
            writer.write(conn.send(h11.Data(data=payload)))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
        except (ConnectionError, h11.RemoteProtocolError):
            pass


async def http(port: int, path: str, body: bytes = b"", method: str = "POST",
               timeout: float = TIMEOUT) -> bytes:
    """One request on a fresh connection; returns the response body (status must be 200)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return await exchange(reader, writer, path, body, method, timeout)


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str,
                   body: bytes = b"", method: str = "POST", timeout: float = TIMEOUT) -> bytes:
    """Send one request on an open connection, read the answer to EOF, close."""
    head = (f"{method} {path} HTTP/1.1\r\nhost: test\r\ncontent-length: {len(body)}\r\n"
            f"connection: close\r\n\r\n").encode()
    try:
        writer.write(head + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
    head_end = raw.index(b"\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 "), raw[:200]
    return raw[head_end + 4:]


def accepted_by(pid: int, port: int, peer_port: int) -> bool:
    """Process ``pid`` has accept()ed the TCP connection from ``peer_port`` to ``port``.

    Linux only: an accepted socket is a file in the process's fd table; one still waiting in the
    listen backlog (connected as far as the caller can tell) has none.
    """
    files = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            files.add(os.readlink(fd))
    for row in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        local, remote, inode = (row.split()[i] for i in (1, 2, 9))
        if (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)) == (port, peer_port):
            return f"socket:[{inode}]" in files
    return False


@dataclass
class Stack:
    app: App
    local: App
    route: int
    tunnel: int
    health: int
    log_path: Path
    proc: asyncio.subprocess.Process
    clients: list[TunnelClient] = field(default_factory=list)

    def log(self) -> str:
        return self.log_path.read_text()

    async def client(self, client_id: str = "alice@laptop:1", claim: bool = True,
                     local_port: int | None = None) -> TunnelClient:
        transport = await TcpTransport.connect("127.0.0.1", self.tunnel)
        client = TunnelClient(transport, client_id, name="pod-7")
        self.clients.append(client)
        await client.start()
        if claim:
            await client.claim(self.route, self.local.port if local_port is None else local_port)
        return client

    async def wait_log(self, text: str, timeout: float = 5.0) -> float:
        """Seconds until ``text`` shows up in the agent's log."""
        start = time.monotonic()
        await wait_until(lambda: text in self.log(), f"{text!r} in the agent log", timeout,
                         interval=0.02)
        return time.monotonic() - start

    async def accepted_caller(self, path: str) -> asyncio.Future[bytes]:
        """A caller on the route that the agent has accepted; the future is its answer."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.route)
        answer = asyncio.ensure_future(exchange(reader, writer, path))
        peer_port = writer.get_extra_info("sockname")[1]
        await wait_until(lambda: accepted_by(self.proc.pid, self.route, peer_port),
                         "the agent to accept the caller", 5, interval=0.01)
        return answer


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    app, local = App("app"), App("local")
    await app.start()
    await local.start()
    route, tunnel, health = free_ports(3)
    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(agent_bundle()[1])
    log_path = tmp_path / "agent.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            AGENT_PYTHON, "-I", "-S", str(pyz), "--tunnel-port", str(tunnel),
            "--health-port", str(health), "--route", f"{route}:{app.port}",
            env={"POD_NAME": "pod-7", "POD_NAMESPACE": "shop"}, stdout=log, stderr=log)
    s = Stack(app, local, route, tunnel, health, log_path, proc)
    try:
        await s.wait_log("ready: ")
        yield s
    finally:
        for client in s.clients:
            await client.aclose()
        app.release.set()
        local.release.set()
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), TIMEOUT)
        app.close()
        local.close()
    for bad in ("Traceback", "never retrieved", "was destroyed", "ERROR"):
        assert bad not in s.log(), s.log()


class RawClient:
    """A tunnel client by hand (core only): it can claim and then go silent."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = ClientConnection("mallory@silent:3", now=time.monotonic())

    @classmethod
    async def claim(cls, stack: Stack) -> RawClient:
        raw = cls(*await asyncio.open_connection("127.0.0.1", stack.tunnel))
        await raw.exchange()  # HELLO → WELCOME
        raw.conn.claim(stack.route, "127.0.0.1:1")
        await raw.exchange()  # CLAIM → REPLY
        return raw

    async def exchange(self) -> list[object]:
        self.writer.write(self.conn.data_to_send())
        data = await asyncio.wait_for(self.reader.read(65536), TIMEOUT)
        return list(self.conn.receive_data(data, time.monotonic()))


async def test_unclaimed_route_is_served_by_the_app(stack: Stack) -> None:
    assert await http(stack.route, "/hello", b"abc") == f"app POST /hello 3 {digest(b'abc')}".encode()


async def test_claim_routes_to_local_and_release_gives_it_back(stack: Stack) -> None:
    client = await stack.client()
    assert (await http(stack.route, "/x")).startswith(b"local POST /x 0")
    await client.release(stack.route)
    assert client.routes == {}
    assert (await http(stack.route, "/x")).startswith(b"app POST /x 0")
    await client.claim(stack.route, stack.local.port)
    assert (await http(stack.route, "/x")).startswith(b"local ")
    await client.aclose()
    assert await client.wait_closed() == "the client left"
    await stack.wait_log(f"routes {stack.route} go back to the app")
    assert (await http(stack.route, "/x")).startswith(b"app ")
    assert "shop/pod-7 INFO client alice@laptop:1: claim" in stack.log()


async def test_second_claim_is_refused_naming_the_holder(stack: Stack) -> None:
    await stack.client("alice@laptop:1")
    bob = await stack.client("bob@desk:2", claim=False)
    with pytest.raises(InterceptConflict) as refused:
        await bob.claim(stack.route, 9)
    assert refused.value.holder == "alice@laptop:1"
    assert "already intercepted by alice@laptop:1" in str(refused.value)
    assert bob.routes == {}
    assert (await http(stack.route, "/x")).startswith(b"local ")


async def test_filtered_claims_share_a_route_and_overlaps_are_refused_naming_the_filter(
        stack: Stack) -> None:
    alice = await stack.client("alice@laptop:1", claim=False)
    bob = await stack.client("bob@desk:2", claim=False)
    mine, theirs = (filter_from_json({"headers": {"x-dev": who}}) for who in ("alice", "bob"))
    await alice.claim(stack.route, stack.local.port, mine)
    await bob.claim(stack.route, stack.local.port, theirs, Mode.MIRROR, AppProtocol.HTTP1)
    carol = await stack.client("carol@x:3", claim=False)
    with pytest.raises(InterceptConflict) as refused:
        await carol.claim(stack.route, stack.local.port, filter_from_json(
            {"headers": {"x-dev": "~^a"}}))
    assert (refused.value.holder, refused.value.holder_filter) == ("alice@laptop:1", mine)
    assert str(refused.value) == (
        f"port {stack.route} is already intercepted by alice@laptop:1 for x-dev=alice; use a "
        "filter that cannot match theirs (e.g. another --header value), or ask them to leave")
    await alice.set_paused(True, WhilePaused.HOLD)
    assert await carol.list_claims() == (
        ClaimEntry(stack.route, "alice@laptop:1", Mode.ROUTE, mine, AppProtocol.AUTO,
                   WhilePaused.HOLD),
        ClaimEntry(stack.route, "bob@desk:2", Mode.MIRROR, theirs, AppProtocol.HTTP1, None))
    with pytest.raises(TunnelError, match="filters and mirror need HTTP"):
        await carol.claim(stack.route, stack.local.port, mode=Mode.MIRROR,
                          protocol=AppProtocol.TCP)


class OnePodGateway:
    """Just what `innerloop list` asks of the gateway: a Ready replica and a tunnel to it."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    @contextlib.asynccontextmanager
    async def _pods(self) -> AsyncIterator[AsyncIterator[dict[str, object]]]:
        async def snapshots() -> AsyncIterator[dict[str, object]]:
            yield {"pod-7": {"spec": {"containers": [{"name": "app"},
                                                     {"name": "innerloop-agent"}]}}}
        yield snapshots()

    def watch_ready_pods(self, namespace: str, selector: str) -> Any:
        assert (namespace, selector) == ("shop", "app=orders")
        return self._pods()

    async def port_forward(self, namespace: str, pod: str, port: int) -> TcpTransport:
        assert (pod, port) == ("pod-7", self.stack.tunnel)
        return await TcpTransport.connect("127.0.0.1", port)


async def test_list_shows_every_claim_with_owner_mode_and_filter(stack: Stack) -> None:
    alice = await stack.client("alice@laptop:1", claim=False)
    await alice.claim(stack.route, stack.local.port, filter_from_json(
        {"headers": {"x-dev": "alice"}, "pathPrefix": "/api"}))
    bob = await stack.client("bob@desk:2", claim=False)
    await bob.claim(stack.route, stack.local.port, mode=Mode.MIRROR)
    await bob.set_paused(True, WhilePaused.CLUSTER)
    summary = ServiceSummary("orders", (), None, True, ("80/http",), tunnel_port=stack.tunnel,
                             selector="app=orders", routes=((stack.route, "80/http"),))
    gateway: Any = OnePodGateway(stack)
    lines, problems = await claims_table(gateway, "shop", [summary], "carol@x:3")
    assert problems == []
    assert [line.split() for line in lines] == [
        ["INTERCEPTED", "PORT", "BY", "MODE", "REQUESTS"],
        ["orders:80/http", "alice@laptop:1", "route", "x-dev=alice", "path-prefix=/api"],
        ["orders:80/http", "bob@desk:2", "mirror", "all", "requests", "(paused:", "cluster)"]]
    assert await claims_table(gateway, "shop", [ServiceSummary("db", (), None, False, ())],
                              "carol@x:3") == ([], [])


async def test_claiming_a_port_the_agent_does_not_route_is_refused(stack: Stack) -> None:
    client = await stack.client(claim=False)
    with pytest.raises(TunnelError, match=f"no route 1 \\(its routes: {stack.route}\\)"):
        await client.claim(1, stack.local.port)


async def test_unaccepted_stream_is_served_by_the_app_with_the_request_intact(
        stack: Stack) -> None:
    raw = await RawClient.claim(stack)  # claims, then never accepts anything
    body = bytes(range(256)) * 40
    started = time.monotonic()
    answer = await http(stack.route, "/intact", body)
    assert answer == f"app POST /intact {len(body)} {digest(body)}".encode()
    assert time.monotonic() - started >= 0.3
    events = raw.conn.receive_data(await raw.reader.read(1 << 20), time.monotonic())
    opened = [e for e in events if isinstance(e, StreamOpened)]
    assert opened and opened[0].route_port == stack.route
    offered = b"".join(e.data for e in events if isinstance(e, DataReceived))
    assert offered.startswith(b"POST /intact HTTP/1.1")  # the client saw it, the app got it
    assert StreamReset(opened[0].stream_id, "not accepted within 300 ms") in events
    raw.writer.close()


async def test_bytes_arriving_while_the_agent_gives_up_are_not_lost(stack: Stack) -> None:
    """The caller keeps sending across the accept deadline; the app must get every byte."""
    raw = await RawClient.claim(stack)
    body = bytes(range(256)) * 64
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.route)
    writer.write(f"POST /trickle HTTP/1.1\r\nhost: t\r\ncontent-length: {len(body)}\r\n"
                 f"connection: close\r\n\r\n".encode())
    for start in range(0, len(body), 256):  # 64 writes over ~0.6 s, past the 300 ms deadline
        writer.write(body[start:start + 256])
        await writer.drain()
        await asyncio.sleep(0.01)
    raw_answer = await asyncio.wait_for(reader.read(-1), TIMEOUT)
    assert raw_answer.endswith(f"app POST /trickle {len(body)} {digest(body)}".encode())
    writer.close()
    raw.writer.close()


async def test_local_port_refusing_sends_the_caller_to_the_app(stack: Stack) -> None:
    (closed_port,) = free_ports(1)
    await stack.client(local_port=closed_port)
    started = time.monotonic()
    assert (await http(stack.route, "/r", b"xyz")).startswith(b"app POST /r 3")
    assert time.monotonic() - started < 0.3  # declined at once, not after the accept timeout
    await stack.wait_log("client declined: 127.0.0.1:")


async def test_silent_client_loses_its_routes_within_two_seconds(stack: Stack) -> None:
    raw = await RawClient.claim(stack)
    silent_since = time.monotonic()  # from now on it neither reads nor pings
    assert (await http(stack.route, "/during")).startswith(b"app ")  # via the accept timeout
    await stack.wait_log("was silent for 2 s")
    assert time.monotonic() - silent_since < 2.5
    assert f"routes {stack.route} go back to the app" in stack.log()
    started = time.monotonic()
    assert (await http(stack.route, "/after")).startswith(b"app ")
    assert time.monotonic() - started < 0.3  # no accept timeout any more: the route is free
    raw.writer.close()


async def test_client_killed_mid_stream_resets_the_caller_and_app_serves_new_ones(
        stack: Stack) -> None:
    client = await stack.client()
    in_flight = asyncio.ensure_future(http(stack.route, "/stall"))
    while stack.local.stalled == 0:
        await asyncio.sleep(0.01)
    client._transport._writer.transport.abort()  # type: ignore[attr-defined]  # kill -9
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(in_flight, 3)  # reset, not a hang and not a fake answer
    await stack.wait_log("went away without saying goodbye")
    assert (await http(stack.route, "/next")).startswith(b"app ")


async def test_client_notices_a_killed_agent(stack: Stack) -> None:
    client = await stack.client()
    stack.proc.kill()
    reason = await asyncio.wait_for(client.wait_closed(), TIMEOUT)
    assert reason == "the agent went away without saying goodbye"
    with pytest.raises(TunnelError, match="closed: the agent went away"):
        await client.release(stack.route)


async def test_stopping_agent_says_goodbye(stack: Stack) -> None:
    client = await stack.client()
    stack.proc.terminate()
    reason = await asyncio.wait_for(client.wait_closed(), TIMEOUT)
    assert reason == "the agent closed the tunnel: the agent is stopping"
    assert await asyncio.wait_for(stack.proc.wait(), TIMEOUT) == 0


async def test_client_notices_a_frozen_agent(stack: Stack) -> None:
    client = await stack.client()
    stack.proc.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        reason = await asyncio.wait_for(client.wait_closed(), TIMEOUT)
        assert reason == "the agent was silent for 2 s"
        assert time.monotonic() - started < 2.5
    finally:
        stack.proc.send_signal(signal.SIGCONT)


async def test_pause_cluster_sends_new_callers_to_the_app(stack: Stack) -> None:
    client = await stack.client()
    await client.set_paused(True, WhilePaused.CLUSTER)
    assert (await http(stack.route, "/p")).startswith(b"app ")
    await client.set_paused(False)
    assert (await http(stack.route, "/p")).startswith(b"local ")


async def test_pause_hold_keeps_new_callers_waiting_until_resume(stack: Stack) -> None:
    client = await stack.client()
    await client.set_paused(True, WhilePaused.HOLD)
    held = await stack.accepted_caller("/held")
    await asyncio.sleep(2.5)  # longer than any tunnel timeout: still waiting, nobody gave up
    assert not held.done()
    assert stack.app.connections == stack.local.connections == 0
    await client.set_paused(False)
    assert (await held).startswith(b"local POST /held")


async def test_held_callers_go_to_the_app_when_the_holder_leaves(stack: Stack) -> None:
    client = await stack.client()
    await client.set_paused(True, WhilePaused.HOLD)
    held = await stack.accepted_caller("/held")
    await asyncio.sleep(0.3)  # time enough to reach the app or the laptop, were it not held
    assert not held.done()
    assert stack.app.connections == stack.local.connections == 0
    await client.aclose()
    assert (await held).startswith(b"app POST /held")


async def test_paused_in_flight_request_waits_without_a_tunnel_timeout(stack: Stack) -> None:
    await stack.client()
    in_flight = asyncio.ensure_future(http(stack.route, "/stall"))  # a breakpoint in the handler
    await asyncio.sleep(3.0)
    assert not in_flight.done()
    stack.local.release.set()
    assert (await in_flight).startswith(b"local POST /stall")


async def test_a_stalled_stream_does_not_block_the_others(stack: Stack) -> None:
    await stack.client()
    big = bytes(8 * 1024 * 1024)  # far more than a window plus every socket buffer
    stalled = asyncio.ensure_future(http(stack.route, "/stall-unread", big))
    while stack.local.stalled == 0:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # let it fill its window
    started = time.monotonic()
    answers = await asyncio.gather(*(http(stack.route, f"/n{i}", b"x" * i) for i in range(50)))
    assert [a.split()[:4] for a in answers] == [
        [b"local", b"POST", f"/n{i}".encode(), str(i).encode()] for i in range(50)]
    assert time.monotonic() - started < 5
    assert not stalled.done()
    stack.local.release.set()
    assert await stalled == f"local POST /stall-unread {len(big)} {digest(big)}".encode()


@pytest.mark.parametrize("size", [3 * 1024 * 1024 + 7, 16 * 1024 * 1024])
async def test_large_bodies_both_ways(stack: Stack, size: int) -> None:
    await stack.client()
    body = bytes(range(251)) * (size // 251) + b"end"
    started = time.monotonic()
    echoed = await http(stack.route, "/echo", body)
    elapsed = time.monotonic() - started
    assert len(echoed) == len(body) and digest(echoed) == digest(body)
    print(f"\n{2 * len(body) / elapsed / 1e6:.0f} MB/s through the tunnel ({size} bytes each way)")
    download = await http(stack.route, f"/big/{size // 256 * 256}", method="GET")
    assert download == bytes(range(256)) * (size // 256)


async def test_half_close_reaches_the_local_side(stack: Stack) -> None:
    """The caller shuts down its sending side and still receives the whole answer."""
    seen: list[bytes] = []

    async def count_until_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(-1)  # returns only at the caller's FIN
        seen.append(data)
        writer.write(f"got {len(data)} bytes".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(count_until_eof, "127.0.0.1", 0)
    await stack.client(local_port=server.sockets[0].getsockname()[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.route)
    writer.write(b"a" * 100_000)
    await writer.drain()
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(-1), TIMEOUT) == b"got 100000 bytes"
    assert seen == [b"a" * 100_000]
    writer.close()
    server.close()


async def test_health_endpoint(stack: Stack) -> None:
    for path, status in (("/healthz", b"200"), ("/other", b"404")):
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.health)
        writer.write(f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(-1), TIMEOUT)
        assert raw.split()[1] == status
        writer.close()


@pytest.mark.parametrize("garbage", [b"GET / HTTP/1.1\r\n\r\n", b"\x00" * 9, encode(Hello(7, "x", 1))])
async def test_bad_tunnel_peers_are_refused_and_the_agent_keeps_serving(
        stack: Stack, garbage: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.tunnel)
    writer.write(garbage)
    answer = await asyncio.wait_for(reader.read(-1), TIMEOUT)  # closed by the agent
    reasons = [f.reason for f in decode_all(answer) if hasattr(f, "reason")]
    assert reasons and ("protocol error" in reasons[0] or "unsupported protocol version 7"
                        in reasons[0])
    writer.close()
    assert (await http(stack.route, "/still")).startswith(b"app ")
    client = await stack.client()
    assert client.agent_name == "pod-7"


async def test_start_fails_cleanly_when_nothing_answers() -> None:
    (port,) = free_ports(1)

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)

    server = await asyncio.start_server(never_answer, "127.0.0.1", port)
    client = TunnelClient(await TcpTransport.connect("127.0.0.1", port), "c", name="nobody",
                          peer_timeout=0.5)
    with pytest.raises(TunnelError, match="the agent was silent for 0.5 s"):
        await client.start()
    server.close()



class RefusedTransport:
    """A pipe that fails the way port-forward does when nothing listens on the pod port."""

    def __init__(self) -> None:
        self.sent = b""
        self.closed = False

    async def recv(self) -> bytes:
        raise TunnelError("pod web-1 port 15400: connection refused")

    async def send(self, data: bytes) -> None:
        self.sent += data

    async def close(self) -> None:
        self.closed = True


async def test_transport_failure_ends_the_tunnel_with_its_message() -> None:
    transport = RefusedTransport()
    client = TunnelClient(transport, "c", name="web-1")
    with pytest.raises(TunnelError, match="tunnel to web-1 failed: the tunnel connection failed: "
                                          "pod web-1 port 15400: connection refused"):
        await client.start()
    assert transport.closed
    assert isinstance(decode_all(transport.sent)[0], Hello)
