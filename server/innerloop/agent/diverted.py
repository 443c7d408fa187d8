"""A stream pair whose incoming bytes a callback can take instead of its reader (the quick
lane's, `agent.lane`): while a `sink` is set, what arrives goes to it, while flow control stays
the pair's (a `StreamWriter` drains as before); ``restore`` gives the reader what the sink did
not use, as if it had just arrived."""

from __future__ import annotations

import asyncio
from typing import Protocol

from innerloop.tunnel.sockets import take_over

LIMIT = 64 * 1024


class Sink(Protocol):
    def on_data(self, source: Diverted, data: bytes) -> None: ...

    def on_end(self, source: Diverted, exc: Exception | None, lost: bool) -> None:
        """The other side ended its half (``lost`` False) or the connection is gone."""

    def on_writable(self, source: Diverted, writable: bool) -> None: ...


class CountingReader(asyncio.StreamReader):
    """Counts what ``read`` took (`Diverted.fed`: what it was given); only ``read`` may."""

    taken = 0

    async def read(self, n: int = -1) -> bytes:
        data = await super().read(n)
        self.taken += len(data)
        return data


class Diverted(asyncio.StreamReaderProtocol):
    def __init__(self, reader: CountingReader) -> None:
        super().__init__(reader, loop=asyncio.get_running_loop())
        self.reader = reader
        self.transport: asyncio.Transport | None = None
        self.sink: Sink | None = None
        self._eof = False
        self._lost: tuple[Exception | None] | None = None  # while diverted: for the reader later
        self.fed = 0  # bytes given to the reader

    @property
    def ended(self) -> bool:
        """Ended, or the reader holds bytes (or an end) not read yet: no sink may take over."""
        return (self._eof or self._lost is not None or self.reader.at_eof()
                or self.reader.exception() is not None or self.fed > self.reader.taken)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.sink is None:
            self.fed += len(data)
            super().data_received(data)
        else:
            self.sink.on_data(self, data)

    def eof_received(self) -> bool:
        if self.sink is None:
            return bool(super().eof_received())
        self._eof = True
        self.sink.on_end(self, None, False)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.sink is None:
            super().connection_lost(exc)
        else:
            self._lost = (exc,)
            self.sink.on_end(self, exc, True)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.sink is not None:
            self.sink.on_writable(self, False)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.sink is not None:
            self.sink.on_writable(self, True)

    def restore(self, unused: bytes) -> None:
        """No sink any more: the reader gets ``unused``, then the end the sink saw."""
        self.sink = None
        if unused:
            self.data_received(unused)
        if self._lost is not None:
            super().connection_lost(self._lost[0])
        elif self._eof:
            super().eof_received()
        self._eof, self._lost = False, None


def pair(transport: asyncio.Transport, protocol: Diverted,
         reader: asyncio.StreamReader) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return reader, asyncio.StreamWriter(transport, protocol, reader, asyncio.get_running_loop())


async def open_diverted(host: str, port: int) -> tuple[asyncio.StreamReader,
                                                       asyncio.StreamWriter]:
    """`asyncio.open_connection`, under a `Diverted` protocol."""
    reader = CountingReader(limit=LIMIT)
    protocol = Diverted(reader)
    transport, _ = await asyncio.get_running_loop().create_connection(
        lambda: protocol, host, port)
    return pair(transport, protocol, reader)


def divert(reader: asyncio.StreamReader,
           writer: asyncio.StreamWriter) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A new stream pair under a `Diverted` protocol, for a connection whose pair must not be
    used any more (`take_over`: what its reader holds, and its end, carry over; keep
    ``writer`` referenced)."""
    protocol = Diverted(CountingReader(limit=LIMIT))
    take_over(reader, writer, protocol)
    assert protocol.transport is not None
    return pair(protocol.transport, protocol, protocol.reader)
