"""A mirror owner's answers are counted from the stream's callback, whatever their framing: a
copy stream with all its copies answered takes 16 more without dropping one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from innerloop.agent.diverted import open_diverted
from innerloop.agent.mirror import MAX_UNANSWERED, Copies, MirrorCounters
from innerloop.agent.owner_stream import Ends

pytestmark = pytest.mark.integration
ANSWERS = [
    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",  # h11
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
]


@dataclass(frozen=True)
class Mirror:
    """A mirror target whose destination is a plain TCP server (as an owner's stream)."""

    port: int
    counters: MirrorCounters = field(default_factory=MirrorCounters)
    paused: bool = False

    @property
    def destination(self) -> Mirror:
        return self

    @property
    def key(self) -> object:
        return self.port

    @property
    def label(self) -> str:
        return f"mirror :{self.port}"

    async def connect(self) -> Ends | None:
        return await open_diverted("127.0.0.1", self.port)


@pytest.mark.parametrize("split", [1, 7, 1000])
async def test_answers_in_any_framing_and_any_split_are_counted(split: int) -> None:
    heads = asyncio.Queue[bytes]()
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while head := await reader.readuntil(b"\r\n\r\n"):
            await heads.put(head)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    target = Mirror(server.sockets[0].getsockname()[1])
    copies = Copies()
    for i in range(MAX_UNANSWERED):
        await copies.start([target], b"GET", f"GET /{i} HTTP/1.1\r\nhost: h\r\n\r\n".encode())
        copies.end(b"")
    for _ in range(MAX_UNANSWERED):
        await asyncio.wait_for(heads.get(), 5)
    dropped = 1
    assert copies.copy_now([target], b"GET", b"GET / HTTP/1.1\r\nhost: h\r\n\r\n")
    assert target.counters.dropped == dropped == 1  # 16 unanswered: the next is dropped
    answers = b"".join(ANSWERS[i % len(ANSWERS)] for i in range(MAX_UNANSWERED))
    for at in range(0, len(answers), split):
        writers[0].write(answers[at:at + split])
        await writers[0].drain()
        await asyncio.sleep(0)
    await asyncio.sleep(0.1)
    for _ in range(MAX_UNANSWERED):  # every answer was counted: room for 16 more
        assert copies.copy_now([target], b"GET", b"GET / HTTP/1.1\r\nhost: h\r\n\r\n")
    assert target.counters.dropped == dropped
    assert target.counters.copied == 2 * MAX_UNANSWERED
    copies.close()
    server.close()
