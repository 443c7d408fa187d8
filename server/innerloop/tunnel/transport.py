"""The byte pipe a tunnel runs on (docs/architecture.md, "Transport").

The Kubernetes port-forward client and a plain TCP connection both implement ``Transport``;
tests and the agent use ``TcpTransport``.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from innerloop.tunnel.sockets import tune

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
