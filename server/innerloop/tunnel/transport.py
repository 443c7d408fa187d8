"""The byte pipe a tunnel runs on (docs/architecture.md, "Transport").

The Kubernetes port-forward client and a plain TCP connection both implement ``Transport``;
tests and the agent use ``TcpTransport``. Both push what arrives (`PushReceive`): the `Link`
decodes it in the socket's callback, no task woken per message.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from innerloop.tunnel.sockets import take_over, tune

READ_SIZE = 256 * 1024


class Transport(Protocol):
    async def recv(self) -> bytes:
        """The next bytes from the peer; b"" at EOF."""
        ...

    async def send(self, data: bytes) -> None:
        """Write all of ``data``; returns once the pipe took it (backpressure)."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class DirectWrite(Protocol):
    """A Transport that takes bytes at once, without a task switch: the `Link` writes each
    batch of frames as it is made and waits (``drain``) only while the pipe is backed up."""

    def write(self, data: bytes) -> bool:
        """Queue ``data`` (never blocks); True if the pipe is backed up: ``drain`` first."""
        ...

    async def drain(self) -> None: ...


class Receiver(Protocol):
    def on_bytes(self, data: bytes | memoryview) -> None: ...

    def on_end(self, error: Exception | None) -> None:
        """The pipe ended: cleanly (None) or with ``error``."""


@runtime_checkable
class PushReceive(Protocol):
    def start_receiving(self, receiver: Receiver) -> None:
        """Hand all input (what is queued first) to ``receiver``; ``recv`` no more."""


class TcpTransport:
    """A Transport over an asyncio TCP stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tune(writer)
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, host: str, port: int) -> TcpTransport:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def recv(self) -> bytes:
        try:
            return await self._reader.read(READ_SIZE)
        except ConnectionError:
            return b""

    def start_receiving(self, receiver: Receiver) -> None:
        pair = self._writer.transport.get_protocol()
        take_over(self._reader, self._writer, _Push(receiver, pair))

    async def send(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    def write(self, data: bytes) -> bool:
        self._writer.write(data)
        return self._writer.transport.get_write_buffer_size() > 0

    async def drain(self) -> None:
        await self._writer.drain()

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass  # already reset by the peer: closed either way


class _Push(asyncio.Protocol):
    """Reads for a `Receiver`; writing stays with the stream pair."""

    def __init__(self, receiver: Receiver, pair: asyncio.BaseProtocol) -> None:
        self._receiver = receiver
        self._pair = pair

    def data_received(self, data: bytes) -> None:
        self._receiver.on_bytes(data)

    def eof_received(self) -> bool:
        self._receiver.on_end(None)
        return True  # our GOODBYE may still be on its way out

    def connection_lost(self, exc: Exception | None) -> None:
        self._receiver.on_end(None)  # a reset ends the tunnel as an EOF does
        self._pair.connection_lost(exc)

    def pause_writing(self) -> None:
        self._pair.pause_writing()

    def resume_writing(self) -> None:
        self._pair.resume_writing()
