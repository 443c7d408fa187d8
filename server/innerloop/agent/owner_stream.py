"""An owner's tunnel stream as an asyncio transport: the per-request router's path to a laptop.

The router talks to an owner exactly as it talks to the app: through a `StreamReader` /
`StreamWriter` pair. `OwnerStream` is the transport under that pair and, at the same time, the
stream's `StreamSink` in the tunnel's `Link`: what the laptop sends is fed straight into the
reader, what the router writes goes straight to the link. No socket pair, no `Relay` in
between, no extra event-loop turn per message.

Flow control is the tunnel's: writes beyond the stream's credit wait here and pause the writer
(``drain`` waits, `congested` says so) until credit comes; received bytes are acknowledged as
they arrive unless the reader is full (then once it is read down), so a slow caller holds the
laptop back by the stream's window. ``close`` sends FIN (after what waits for credit), ``abort``
a reset; a reset from the laptop is a ``ConnectionResetError`` on the reader.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from innerloop.agent.diverted import LIMIT, CountingReader, Diverted
from innerloop.tunnel.relay import NOT_ACCEPTED, StreamIO

Ends = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class OwnerStream(asyncio.Transport):
    def __init__(self, io: StreamIO, stream_id: int, on_finished: Callable[[int], None]) -> None:
        super().__init__()
        self._io = io
        self.stream_id = stream_id
        self._on_finished = on_finished
        self._loop = asyncio.get_running_loop()
        self._reader = CountingReader(limit=LIMIT, loop=self._loop)
        self._protocol = Diverted(self._reader)
        self._protocol.connection_made(self)
        self._waiting = bytearray()  # written, waiting for credit
        self._unacknowledged = 0
        self._reading = True
        self._fin_pending = self._fin_sent = False
        self._closing = False
        self._lost = False
        self.writing_paused = False
        self.peer_ended = False
        self.declined = False  # the client did not accept the stream: nothing reached it

    def ends(self) -> Ends:
        return self._reader, asyncio.StreamWriter(self, self._protocol, self._reader, self._loop)

    # -- StreamSink: events from the link --------------------------------------------------------

    def on_data(self, data: bytes) -> None:
        if self._lost:  # closed: read and dropped
            self._io.acknowledge(self.stream_id, len(data))
            return
        self._protocol.data_received(data)
        if self._reading:
            self._io.acknowledge(self.stream_id, len(data))
        else:
            self._unacknowledged += len(data)

    def on_eof(self) -> None:
        self.peer_ended = True
        if not self._lost:
            self._protocol.eof_received()
        if self._closing:
            self._finish(None)

    def on_credit(self) -> None:
        self._flush()

    def on_reset(self, reason: str) -> None:
        self.declined = reason == NOT_ACCEPTED
        self._closing = True
        self._finish(ConnectionResetError(reason))

    # -- Transport: the router's writer ----------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data or self._closing:
            return
        if self._waiting:
            self._waiting += data
            return
        credit = self._io.credit(self.stream_id)
        if credit >= len(data):
            self._io.send(self.stream_id, bytes(data))
            return
        if credit:
            self._io.send(self.stream_id, bytes(data[:credit]))
        self._waiting += data[credit:]
        self._set_writing_paused(True)

    def write_eof(self) -> None:
        if not self._fin_pending:
            self._fin_pending = True
            self._flush()

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return len(self._waiting)

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        self._reading = True
        if self._unacknowledged:
            self._io.acknowledge(self.stream_id, self._unacknowledged)
            self._unacknowledged = 0

    def is_reading(self) -> bool:
        return self._reading

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Like closing a socket: FIN once what waits is sent; the rest of the answer, if any,
        is read and dropped until the laptop ends its side."""
        if self._closing:
            return
        self.write_eof()
        self._closing = True
        if self.peer_ended or not self._io.is_active(self.stream_id):
            self._finish(None)
        else:
            self._lose(None)

    def abort(self) -> None:
        """Like a reset."""
        if self._lost and self._closing:
            return
        self._closing = True
        self._io.reset(self.stream_id, "the agent's router reset it")
        self._finish(None)

    def get_protocol(self) -> Diverted:
        return self._protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": "tunnel", "sockname": "tunnel"}.get(name, default)

    # -- internals --------------------------------------------------------------------------------

    def _flush(self) -> None:
        if self._waiting:
            credit = self._io.credit(self.stream_id)
            if not credit:
                return
            chunk, self._waiting = bytes(self._waiting[:credit]), self._waiting[credit:]
            self._io.send(self.stream_id, chunk)
            if self._waiting:
                return
            self._set_writing_paused(False)
        if self._fin_pending and not self._fin_sent:
            self._fin_sent = True
            self._io.send_fin(self.stream_id)

    def _set_writing_paused(self, paused: bool) -> None:
        if paused != self.writing_paused and not self._lost:
            self.writing_paused = paused
            if paused:
                self._protocol.pause_writing()
            else:
                self._protocol.resume_writing()

    def _lose(self, exc: Exception | None) -> None:
        """The router is done with the reader and writer (it closed, or the stream broke)."""
        if self._lost:
            return
        self._set_writing_paused(False)
        self._lost = True
        self._loop.call_soon(self._protocol.connection_lost, exc)

    def _finish(self, exc: Exception | None) -> None:
        self._lose(exc)
        self._on_finished(self.stream_id)


def congested(writer: asyncio.StreamWriter) -> bool:
    """The other end has not taken what we wrote (no tunnel credit, or bytes the kernel would
    not take)."""
    return writer.transport.get_write_buffer_size() > 0
