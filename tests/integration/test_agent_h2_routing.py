"""Per-stream routing of HTTP/2 cleartext (gRPC) in the agent (issue 9), on loopback.

The agent runs in-process; the app and each "laptop" are gRPC servers (generic handlers over
raw bytes, no generated code) that say who they are. Callers are real grpcio channels and a raw
h2 client that mixes streams on one connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import h2.config
import h2.connection
import h2.events
import pytest
from innerloop.agent.zipapp import agent_bundle
from innerloop.core.filters import AppProtocol, HeaderMatch, Mode, RequestFilter
from innerloop.core.request import WhilePaused
from innerloop.tunnel.client import TunnelClient
from innerloop.tunnel.transport import TcpTransport

from tests.integration.test_agent_http_routing import (  # noqa: F401 (an autouse fixture)
    AGENT_PYTHON,
    Stack,
    nothing_logged_as_an_error,
    start_stack,
    stop_stack,
)
from tools.net import free_ports, port_open
from tools.wait import wait_until

pytestmark = pytest.mark.integration
TIMEOUT = 10.0


ALICE_PORT: dict[int, int] = {}
"""The local port of each grpc_stack's "alice" (by the stack's id)."""
CALLS: dict[str, list[bytes]] = {}
"""Every call each test server got, by who it is."""


async def grpc_server(who: str) -> tuple[grpc.aio.Server, int]:
    async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        CALLS.setdefault(who, []).append(request)
        return f"{who} {request.decode(errors='replace')}".encode()

    async def streaming(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        for i in range(int(request)):
            yield f"{who} {i}".encode()
            await asyncio.sleep(0.01)

    async def big(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        digest = f"{who} {hashlib.sha256(request).hexdigest()}".encode()
        for i in range(40):
            yield digest + bytes([i]) * 65536

    handler = grpc.method_handlers_generic_handler("t.Who", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.unary_stream_rpc_method_handler(streaming),
        "Big": grpc.unary_stream_rpc_method_handler(big)})
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


@pytest.fixture
async def grpc_stack() -> AsyncIterator[Stack]:
    s = await start_stack()
    app, app_port = await grpc_server("app")
    s.agent.table.routes[s.route] = app_port  # the route now leads to the gRPC app
    alice, alice_port = await grpc_server("alice")
    await s.claim("alice", RequestFilter(headers=(HeaderMatch("x-dev", "alice"),)),
                  local_port=alice_port)
    ALICE_PORT[id(s)] = alice_port
    try:
        yield s
    finally:
        await stop_stack(s)
        await app.stop(None)
        await alice.stop(None)


async def test_grpc_unary_and_server_streaming_by_metadata(grpc_stack: Stack) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_stack.route}") as channel:
        unary = channel.unary_unary("/t.Who/Unary")
        stream = channel.unary_stream("/t.Who/Stream")
        mine = (("x-dev", "alice"),)
        assert await asyncio.wait_for(unary(b"hi", metadata=mine), TIMEOUT) == b"alice hi"
        assert await asyncio.wait_for(unary(b"hi"), TIMEOUT) == b"app hi"
        got = [m async for m in stream(b"5", metadata=mine)]
        assert got == [f"alice {i}".encode() for i in range(5)]
        got = [m async for m in stream(b"3")]
        assert got == [f"app {i}".encode() for i in range(3)]


async def test_mixed_streams_on_one_h2_connection(grpc_stack: Stack) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", grpc_stack.route)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                header_encoding="utf-8"))
    conn.initiate_connection()
    expected: dict[int, str] = {}
    for i in range(12):
        who = "alice" if i % 3 == 0 else "app"
        sid = conn.get_next_available_stream_id()
        headers = [(":method", "POST"), (":scheme", "http"), (":authority", "x"),
                   (":path", "/t.Who/Unary"), ("content-type", "application/grpc"),
                   ("te", "trailers")] + ([("x-dev", "alice")] if who == "alice" else [])
        conn.send_headers(sid, headers)
        body = f"n{i}".encode()
        conn.send_data(sid, b"\x00" + len(body).to_bytes(4, "big") + body, end_stream=True)
        expected[sid] = f"{who} n{i}"
    writer.write(conn.data_to_send())
    answers: dict[int, bytes] = {}
    done: set[int] = set()

    async def read_all() -> None:
        while len(done) < len(expected):
            data = await reader.read(65536)
            assert data, "the agent closed the connection"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    answers[event.stream_id] = answers.get(event.stream_id, b"") + event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    done.add(event.stream_id)
                elif isinstance(event, h2.events.StreamReset):
                    pytest.fail(f"stream reset: {event}")
            writer.write(conn.data_to_send())

    await asyncio.wait_for(read_all(), TIMEOUT)
    assert {sid: data[5:].decode() for sid, data in answers.items()} == expected
    writer.close()


@pytest.mark.parametrize("garbage", [
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x09\x00\x00\x00\x00\x00garbage!",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nnot frames at all, x-dev: alice\r\n\r\n",
])
async def test_malformed_h2_goes_to_the_app_never_to_an_owner(grpc_stack: Stack,
                                                              garbage: bytes) -> None:
    received = bytearray()

    async def raw_app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            received.extend(data)
        writer.close()

    raw = await asyncio.start_server(raw_app, "127.0.0.1", 0)
    grpc_stack.agent.table.routes[grpc_stack.route] = raw.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", grpc_stack.route)
        writer.write(garbage)
        writer.write_eof()
        for _ in range(100):
            if bytes(received) == garbage:
                break
            await asyncio.sleep(0.05)
        assert bytes(received) == garbage
        writer.close()
    finally:
        raw.close()


async def test_a_held_stream_holds_no_other_stream_on_its_connection(grpc_stack: Stack) -> None:
    await grpc_stack.clients["alice"].set_paused(True, WhilePaused.HOLD)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_stack.route}") as channel:
        unary = channel.unary_unary("/t.Who/Unary")
        held = asyncio.ensure_future(unary(b"held", metadata=(("x-dev", "alice"),)))
        for i in range(10):
            assert await asyncio.wait_for(unary(f"{i}".encode()), TIMEOUT) == f"app {i}".encode()
        await asyncio.sleep(0.3)
        assert not held.done()
        await grpc_stack.clients["alice"].set_paused(False)
        assert await asyncio.wait_for(held, TIMEOUT) == b"alice held"


async def test_an_owner_whose_local_process_refuses_leaves_its_calls_to_the_app(
        grpc_stack: Stack) -> None:
    [closed] = free_ports(1)
    await grpc_stack.claim("bob", RequestFilter(headers=(HeaderMatch("x-dev", "bob"),)),
                           local_port=closed)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_stack.route}") as channel:
        unary = channel.unary_unary("/t.Who/Unary")
        bob = (("x-dev", "bob"),)
        assert await asyncio.wait_for(unary(b"1", metadata=bob), TIMEOUT) == b"app 1"
        assert await asyncio.wait_for(unary(b"2", metadata=bob), TIMEOUT) == b"app 2"
        alice = (("x-dev", "alice"),)
        assert await asyncio.wait_for(unary(b"3", metadata=alice), TIMEOUT) == b"alice 3"


@pytest.mark.parametrize("dev_name", ["alice", "nobody"])
async def test_megabytes_each_way_stream_within_the_windows(grpc_stack: Stack,
                                                            dev_name: str) -> None:
    upload = bytes(range(256)) * 8192  # 2 MiB up, 2.5 MiB streamed down
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_stack.route}") as channel:
        big = channel.unary_stream("/t.Who/Big")
        got = [m async for m in big(upload, metadata=(("x-dev", dev_name),))]
    who = "alice" if dev_name == "alice" else "app"
    digest = f"{who} {hashlib.sha256(upload).hexdigest()}".encode()
    assert got == [digest + bytes([i]) * 65536 for i in range(40)]


async def test_the_zipapp_agent_routes_grpc_by_metadata(tmp_path: Path) -> None:
    """h2 (imported on the first h2 connection) works from the bundle, on INNERLOOP_AGENT_PYTHON."""
    app, app_port = await grpc_server("app")
    alice, alice_port = await grpc_server("alice")
    route, tunnel, health = free_ports(3)
    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(agent_bundle()[1])
    proc = await asyncio.create_subprocess_exec(
        AGENT_PYTHON, "-I", "-S", str(pyz), "--tunnel-port", str(tunnel), "--health-port",
        str(health), "--route", f"{route}:{app_port}", stdout=asyncio.subprocess.DEVNULL)
    client = None
    try:
        await wait_until(lambda: port_open(tunnel), "the agent listening", TIMEOUT)
        client = TunnelClient(await TcpTransport.connect("127.0.0.1", tunnel), "alice@laptop:1")
        await client.start()
        await client.claim(route, alice_port,
                           RequestFilter(headers=(HeaderMatch("x-dev", "alice"),)))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{route}") as channel:
            unary = channel.unary_unary("/t.Who/Unary")
            stream = channel.unary_stream("/t.Who/Stream")
            mine = (("x-dev", "alice"),)
            assert await asyncio.wait_for(unary(b"a", metadata=mine), TIMEOUT) == b"alice a"
            assert await asyncio.wait_for(unary(b"b"), TIMEOUT) == b"app b"
            assert [m async for m in stream(b"2", metadata=mine)] == [b"alice 0", b"alice 1"]
    finally:
        if client is not None:
            await client.aclose()
        proc.terminate()
        await proc.wait()
        await app.stop(None)
        await alice.stop(None)


def h2_request(dev_name: str, body: bytes) -> bytes:
    """A complete h2 connection start and one gRPC unary call, as a client writes it."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "POST"), (":scheme", "http"), (":authority", "x"),
                          (":path", "/t.Who/Unary"), ("content-type", "application/grpc"),
                          ("te", "trailers"), ("x-dev", dev_name)])
    conn.send_data(1, b"\x00" + len(body).to_bytes(4, "big") + body, end_stream=True)
    return conn.data_to_send()


async def test_mangled_h2_never_reaches_an_owner_whose_filter_it_misses(
        grpc_stack: Stack) -> None:
    """Random damage to a call for "bob" (no claim matches it): whatever the agent makes of it,
    alice's server never sees it, and the agent keeps serving."""
    rng = random.Random(9)
    valid = h2_request("bob", b"mangled")
    CALLS.pop("alice", None)
    for _ in range(40):
        data = bytearray(valid)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(24, len(data))] = rng.randrange(256)  # after the preface
        _, writer = await asyncio.open_connection("127.0.0.1", grpc_stack.route)
        writer.write(bytes(data))
        await asyncio.sleep(0.02)
        writer.close()
    await asyncio.sleep(0.2)
    assert CALLS.get("alice", []) == []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_stack.route}") as channel:
        unary = channel.unary_unary("/t.Who/Unary")
        assert await asyncio.wait_for(unary(b"ok", metadata=(("x-dev", "alice"),)),
                                      TIMEOUT) == b"alice ok"


async def test_a_claim_for_http1_leaves_h2_connections_whole_to_the_app(grpc_stack: Stack) -> None:
    await grpc_stack.clients["alice"].claim(
        grpc_stack.route, ALICE_PORT[id(grpc_stack)],
        RequestFilter(headers=(HeaderMatch("x-dev", "alice"),)), protocol=AppProtocol.HTTP1)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_stack.route}") as channel:
        unary = channel.unary_unary("/t.Who/Unary")
        assert await asyncio.wait_for(unary(b"x", metadata=(("x-dev", "alice"),)),
                                      TIMEOUT) == b"app x"


async def test_grpc_mirror_copies_calls_the_app_answers_and_drops_them_while_paused(
        grpc_stack: Stack) -> None:
    """A mirror claim gets a copy of each matching call (unary and streaming request bodies);
    the app answers every one; paused, its copies are dropped and counted, the app unaffected."""
    bob, bob_port = await grpc_server("bob")
    try:
        await grpc_stack.claim("bob", RequestFilter(headers=(HeaderMatch("x-copy", "yes"),)),
                               Mode.MIRROR, local_port=bob_port)
        CALLS.pop("bob", None)
        copy = (("x-copy", "yes"),)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_stack.route}") as channel:
            unary = channel.unary_unary("/t.Who/Unary")
            for i in range(10):
                assert await asyncio.wait_for(unary(f"c{i}".encode(), metadata=copy),
                                              TIMEOUT) == f"app c{i}".encode()
            assert await asyncio.wait_for(unary(b"plain"), TIMEOUT) == b"app plain"
            await wait_until(lambda: len(CALLS.get("bob", [])) == 10, "10 copies at bob", TIMEOUT)
            assert sorted(CALLS["bob"]) == sorted(f"c{i}".encode() for i in range(10))
            assert grpc_stack.mirror_counts("bob") == (10, 0)

            await grpc_stack.clients["bob"].set_paused(True, WhilePaused.CLUSTER)
            for i in range(5):
                assert await asyncio.wait_for(unary(b"p", metadata=copy), TIMEOUT) == b"app p"
            assert grpc_stack.mirror_counts("bob") == (10, 5)
            await grpc_stack.clients["bob"].set_paused(False)
            assert await asyncio.wait_for(unary(b"again", metadata=copy), TIMEOUT) == b"app again"
            await wait_until(lambda: b"again" in CALLS["bob"], "a copy after resume", TIMEOUT)
        assert len(CALLS["bob"]) == 11 and grpc_stack.mirror_counts("bob") == (11, 5)
    finally:
        await bob.stop(None)


async def test_a_grpc_copy_beyond_the_mirrors_window_is_cut_and_counted_as_dropped(
        grpc_stack: Stack) -> None:
    """A mirror that takes nothing (it never reads, nor opens its h2 window): a call whose body
    is bigger than the copy's window is answered by the app; its copy is cut (reset: it must
    not look whole) and counted as dropped, as an HTTP/1.1 copy would be."""
    async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)

    stuck = await asyncio.start_server(never_reads, "127.0.0.1", 0)
    try:
        await grpc_stack.claim("bob", RequestFilter(headers=(HeaderMatch("x-copy", "yes"),)),
                               Mode.MIRROR, local_port=stuck.sockets[0].getsockname()[1])
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_stack.route}") as channel:
            unary = channel.unary_unary("/t.Who/Unary")
            body = b"x" * 300_000  # the default window is 65,535 bytes
            answer = await asyncio.wait_for(unary(body, metadata=(("x-copy", "yes"),)), TIMEOUT)
            assert answer == b"app " + body
            await wait_until(lambda: grpc_stack.mirror_counts("bob") == (0, 1),
                             "the copy counted as dropped", TIMEOUT)
    finally:
        stuck.close()
