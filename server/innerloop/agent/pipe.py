"""An in-memory, socket-like pair of asyncio streams.

The per-request router talks to an owner's tunnel stream exactly as it talks to the app: through
a `StreamReader`/`StreamWriter` pair. The other end of the pipe is handed to the tunnel's
`Relay` the way a caller's socket is (`AgentTunnel.offer`), so the tunnel code needs no second
kind of stream. Backpressure is the socket's: a reader holding more than twice its limit pauses
the writer on the other end (``drain`` waits) until it is read down. ``close`` is an EOF for the
other end, ``abort`` a connection reset.
"""

from __future__ import annotations

import asyncio
from typing import Any

LIMIT = 64 * 1024
Ends = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class _PipeTransport(asyncio.Transport):
    def __init__(self, protocol: asyncio.StreamReaderProtocol) -> None:
        super().__init__()
        self.protocol = protocol
        self.peer: _PipeTransport | None = None
        self._closing = False
        self._eof_sent = False
        self._reading = True
        self.writing_paused = False

    # -- writing: straight into the other end's reader ----------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        peer = self.peer
        if data and not self._eof_sent and peer is not None and not peer._closing:
            peer.protocol.data_received(bytes(data))

    def write_eof(self) -> None:
        if not self._eof_sent:
            self._eof_sent = True
            peer = self.peer
            if peer is not None and not peer._closing:
                peer.protocol.eof_received()  # the StreamReaderProtocol feeds the EOF

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return 0

    # -- reading: the other end's writer pauses while our reader is full -----------------------

    def pause_reading(self) -> None:
        self._reading = False
        if self.peer is not None:
            self.peer._set_writing_paused(True)

    def resume_reading(self) -> None:
        self._reading = True
        if self.peer is not None:
            self.peer._set_writing_paused(False)

    def is_reading(self) -> bool:
        return self._reading

    # -- ending ---------------------------------------------------------------------------------

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Like closing a socket: the other end reads EOF; what it writes from now is dropped."""
        if not self._closing:
            self.write_eof()
            self._end(None)

    def abort(self) -> None:
        """Like a reset: the other end's reads and writes fail."""
        if self._closing:
            return
        peer = self.peer
        self._end(None)
        if peer is not None and not peer._closing:
            peer._end(ConnectionResetError("the other end of the pipe reset it"))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": "pipe", "sockname": "pipe"}.get(name, default)

    def _set_writing_paused(self, paused: bool) -> None:
        if paused != self.writing_paused and not self._closing:
            self.writing_paused = paused
            if paused:
                self.protocol.pause_writing()
            else:
                self.protocol.resume_writing()

    def _end(self, exc: Exception | None) -> None:
        self._closing = True
        if self.writing_paused:
            self.writing_paused = False
            self.protocol.resume_writing()
        if self.peer is not None:
            self.peer._set_writing_paused(False)  # nobody will read us down any more
        asyncio.get_running_loop().call_soon(self.protocol.connection_lost, exc)


def memory_pipe(limit: int = LIMIT) -> tuple[Ends, Ends]:
    """Two connected ends, each a (reader, writer) pair as `asyncio.open_connection` gives."""
    loop = asyncio.get_running_loop()
    ends: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, _PipeTransport]] = []
    for _ in range(2):
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport = _PipeTransport(protocol)
        protocol.connection_made(transport)
        ends.append((reader, asyncio.StreamWriter(transport, protocol, reader, loop), transport))
    (ra, wa, ta), (rb, wb, tb) = ends
    ta.peer, tb.peer = tb, ta
    return (ra, wa), (rb, wb)


def congested(writer: asyncio.StreamWriter) -> bool:
    """The other end has not read what we wrote (a pipe whose reader is full, or a socket with
    bytes the kernel would not take)."""
    transport = writer.transport
    if isinstance(transport, _PipeTransport):
        return transport.writing_paused
    return transport.get_write_buffer_size() > 0
