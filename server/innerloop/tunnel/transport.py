"""The byte pipe a tunnel runs on (docs/architecture.md, "Transport").

The Kubernetes port-forward client and a plain TCP connection both implement ``Transport``;
tests and the agent use ``TcpTransport``.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

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

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass  # already reset by the peer: closed either way
