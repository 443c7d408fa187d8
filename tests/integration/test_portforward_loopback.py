"""The port-forward client against a loopback `websockets` server that speaks the API server's
v4.channel.k8s.io framing: messages reach the tunnel in order from the protocol's callback
(pushed, fragments joined, those sent before the client was ready kept), the error channel and
a close without a close frame end it with a ClusterError, and writes reach the pod.
(tests/e2e/test_portforward.py runs the same client against the real API server.)"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from innerloop.core.errors import ClusterError
from innerloop.k8s.portforward import SUBPROTOCOL, PortForward, PortForwardConnection
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

pytestmark = pytest.mark.integration
PORT = 8080
HEADER = struct.pack("<H", PORT)
Pod = Callable[[ServerConnection], Awaitable[None]]


class Collect:
    """A `Receiver` that keeps what it is given."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.ended: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def on_bytes(self, data: bytes) -> None:
        self.data += data

    def on_end(self, error: Exception | None) -> None:
        assert not self.ended.done(), "on_end twice"
        self.ended.set_result(error)


@contextlib.asynccontextmanager
async def forward_to(pod: Pod) -> AsyncIterator[PortForward]:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"\x00" + HEADER)
        await ws.send(b"\x01" + HEADER)
        await pod(ws)

    async with serve(handler, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:
        port = server.sockets[0].getsockname()[1]
        ws = await connect(f"ws://127.0.0.1:{port}/", subprotocols=[SUBPROTOCOL],
                           create_connection=PortForwardConnection)
        assert isinstance(ws, PortForwardConnection)
        await asyncio.sleep(0.1)  # the pod's first messages arrive before the client is ready
        forward = PortForward(ws, "pod/p:8080", PORT)
        try:
            yield forward
        finally:
            await forward.close()


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        assert isinstance(message, bytes) and message[0] == 0
        await ws.send(message)


async def test_messages_are_pushed_in_order_fragments_joined_early_ones_kept() -> None:
    async def pod(ws: ServerConnection) -> None:
        await ws.send(b"\x00early ")
        await asyncio.sleep(0.3)
        await ws.send([b"\x00frag", b"mented ", b"message"])  # one message in three frames
        await ws.send(b"\x00last")
        await ws.close()

    async with forward_to(pod) as forward:
        received = Collect()
        forward.start_receiving(received)
        assert await asyncio.wait_for(received.ended, 5) is None
        assert bytes(received.data) == b"early fragmented messagelast"


async def test_writes_reach_the_pod_and_recv_reads_its_answers() -> None:
    async with forward_to(echo) as forward:
        payload = bytes(range(256)) * 2048  # 512 KiB: more than one message
        forward.write(b"hello")  # backed up or not: drain() then
        await forward.drain()
        await forward.send(payload)
        got = bytearray()
        while len(got) < 5 + len(payload):
            got += await asyncio.wait_for(forward.recv(), 5)
        assert bytes(got) == b"hello" + payload


async def test_the_error_channel_ends_the_forward_with_its_text() -> None:
    async def refused(ws: ServerConnection) -> None:
        await ws.send(b"\x01error forwarding port 8080: dial tcp: connection refused")
        await ws.close()

    async with forward_to(refused) as forward:
        received = Collect()
        forward.start_receiving(received)
        error = await asyncio.wait_for(received.ended, 5)
        assert str(error) == ("port-forward to pod/p:8080 failed: nothing listens on "
                              "127.0.0.1:8080 in the pod (connection refused)")
        with pytest.raises(ClusterError, match="nothing listens"):
            await forward.send(b"x")


async def test_a_connection_cut_without_a_close_is_an_error() -> None:
    async def cut(ws: ServerConnection) -> None:
        await ws.send(b"\x00some")
        ws.transport.abort()

    async with forward_to(cut) as forward:
        assert await asyncio.wait_for(forward.recv(), 5) == b"some"
        with pytest.raises(ClusterError, match="was cut off"):
            await asyncio.wait_for(forward.recv(), 5)
