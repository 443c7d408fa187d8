"""The quick lane's edges (agent/lane.py), between a raw caller and a scripted app: an answer
the lane cannot count (chunked) goes on with h11, HEAD answers have no body, a request sent
while the previous answer is on its way waits its turn, an app that closes an idle connection
gets the request again on a new one, an answer cut short resets the caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from innerloop.core.filters import HeaderMatch, RequestFilter

from tests.integration.test_agent_http_routing import (  # noqa: F401 (an autouse fixture)
    Stack,
    nothing_logged_as_an_error,
    start_stack,
    stop_stack,
)

pytestmark = pytest.mark.integration
TIMEOUT = 10.0


def answer(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def scripted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers by path: /chunked (chunked, in pieces), /slow (its head, then its body in pieces),
    /close (answers, then closes the idle connection), /cut (half an answer, then closes);
    any other: `app <path>`; HEAD: the head of a 5-byte answer."""
    try:
        while head := await reader.readuntil(b"\r\n\r\n"):
            method, path = head.split(b" ")[:2]
            if method == b"HEAD":
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
            elif path == b"/chunked":
                for part in (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                             b"5\r\nchunk\r\n", b"0\r\n\r\n"):
                    writer.write(part)
                    await asyncio.sleep(0.01)
            elif path == b"/slow":  # the whole head first: the lane counts the body's pieces
                whole = answer(b"one two three")
                for part in (whole[:-10], whole[-10:-5], whole[-5:]):
                    writer.write(part)
                    await asyncio.sleep(0.02)
            elif path == b"/close":
                writer.write(answer(b"app /close"))
                await writer.drain()
                writer.close()
                return
            elif path == b"/cut":
                writer.write(answer(b"0123456789")[:-5])
                await writer.drain()
                writer.close()
                return
            else:
                writer.write(answer(b"app " + path))
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


@pytest.fixture
async def lane_stack() -> AsyncIterator[Stack]:
    s = await start_stack()
    app = await asyncio.start_server(scripted, "127.0.0.1", 0)
    s.agent.table.routes[s.route] = app.sockets[0].getsockname()[1]
    await s.claim("alice", RequestFilter(headers=(HeaderMatch("x-dev", "alice"),)))
    try:
        yield s
    finally:
        app.close()
        await stop_stack(s)


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str,
                   method: str = "GET") -> bytes:
    writer.write(f"{method} {path} HTTP/1.1\r\nhost: o\r\n\r\n".encode())
    return await asyncio.wait_for(read_answer(reader, method == "HEAD"), TIMEOUT)


async def read_answer(reader: asyncio.StreamReader, head_only: bool = False) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    if head_only:
        return head
    if b"chunked" in head:
        body = b""
        while (size := int((await reader.readuntil(b"\r\n"))[:-2], 16)):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
        return body
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return await reader.readexactly(length)


async def test_the_lanes_edges_keep_the_connection_in_step(lane_stack: Stack) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", lane_stack.route)
    try:
        assert await exchange(reader, writer, "/first") == b"app /first"  # h11; then the lane
        assert await exchange(reader, writer, "/chunked") == b"chunk"  # the lane stops: h11
        assert await exchange(reader, writer, "/again") == b"app /again"
        head = await exchange(reader, writer, "/h", "HEAD")
        assert head.startswith(b"HTTP/1.1 200") and b"content-length: 5" in head
        assert await exchange(reader, writer, "/after-head") == b"app /after-head"
        assert await exchange(reader, writer, "/slow") == b"one two three"
        # the next request while an answer is on its way: it waits, answered in order
        writer.write(b"GET /slow HTTP/1.1\r\nhost: o\r\n\r\n")
        await asyncio.sleep(0.005)
        writer.write(b"GET /behind HTTP/1.1\r\nhost: o\r\n\r\n")
        assert await asyncio.wait_for(read_answer(reader), TIMEOUT) == b"one two three"
        assert await asyncio.wait_for(read_answer(reader), TIMEOUT) == b"app /behind"
        # the app closes its idle connection: the next request goes again on a new one
        assert await exchange(reader, writer, "/close") == b"app /close"
        await asyncio.sleep(0.1)
        assert await exchange(reader, writer, "/reopened") == b"app /reopened"
        # an owner's request in between, on the same connection
        writer.write(b"GET /mine HTTP/1.1\r\nhost: o\r\nx-dev: alice\r\n\r\n")
        assert (await asyncio.wait_for(read_answer(reader), TIMEOUT)).startswith(b"alice")
        writer.write(b"GET /mine2 HTTP/1.1\r\nhost: o\r\nx-dev: alice\r\n\r\n")
        assert (await asyncio.wait_for(read_answer(reader), TIMEOUT)).startswith(b"alice")
        # an answer cut short: the caller is reset, never handed a short answer as whole
        writer.write(b"GET /cut HTTP/1.1\r\nhost: o\r\n\r\n")
        with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
            await asyncio.wait_for(read_answer(reader), TIMEOUT)
    finally:
        writer.close()
