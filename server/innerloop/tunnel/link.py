"""Drives one core ``Connection`` over a ``Transport``: the asyncio shell both ends share.

The link owns the only reader and the only writer of the transport, arms one timer at the core's
next deadline, and hands events out synchronously: stream events to that stream's ``Relay``,
the rest to the role's handler (a relay is one kind of `StreamSink`). Handlers never block the reader, so one slow local socket can
never hold up the tunnel (its relay buffers at most one window, which the core enforces).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from innerloop.core.errors import RemoteProtocolError
from innerloop.core.mux import Connection
from innerloop.core.mux_events import (
    Closed,
    CreditAvailable,
    DataReceived,
    MuxEvent,
    StreamEnded,
    StreamReset,
)
from innerloop.tunnel.relay import NOT_ACCEPTED, Relay, SinkFactory, SinkT, StreamSink
from innerloop.tunnel.transport import DirectWrite, PushReceive, Transport

log = logging.getLogger(__name__)
GOODBYE_FLUSH_TIMEOUT = 1.0
MAX_SEND = 1024 * 1024  # per Transport.send: port-forward drops a single message over 32 MiB


class Link:
    def __init__(self, conn: Connection, transport: Transport, on_event: Callable[[MuxEvent], None],
                 label: str) -> None:
        self.conn = conn
        self.label = label
        self._relays: dict[int, StreamSink] = {}
        """The only table of this tunnel's stream sinks (relays and others): written here and
        nowhere else."""
        self.moved = 0  # stream bytes carried either way
        self._sent_last: dict[int, bool] = {}  # per stream: its latest bytes went to the peer
        self._transport = transport
        self._direct = transport if isinstance(transport, DirectWrite) else None
        self._backed_up = False  # direct: the writer task drains before anything more goes
        self._on_event = on_event
        self._loop = asyncio.get_running_loop()
        self._wake_writer = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed: asyncio.Future[str] = self._loop.create_future()

    def now(self) -> float:
        return self._loop.time()

    async def run(self) -> str:
        """Pump until the tunnel ends; returns why it ended."""
        writer = asyncio.ensure_future(self._write_loop())
        reader = None
        if isinstance(self._transport, PushReceive):
            self._transport.start_receiving(self)  # input decoded in the socket's callback
        else:
            reader = asyncio.ensure_future(self._read_loop())
        self.changed()
        try:
            reason = await asyncio.shield(self._closed)
        finally:
            if reader is not None:
                reader.cancel()
            if self._timer is not None:
                self._timer.cancel()
            try:  # let the GOODBYE out, but never wait on a peer that stopped reading
                await asyncio.wait_for(writer, GOODBYE_FLUSH_TIMEOUT)
            except (asyncio.TimeoutError, OSError, asyncio.CancelledError):
                writer.cancel()
            await self._transport.close()
        return reason

    async def wait_closed(self) -> str:
        return await asyncio.shield(self._closed)

    @property
    def closed(self) -> bool:
        return self._closed.done()

    def changed(self) -> None:
        """Call after every command on ``conn``: flush its bytes and re-arm its deadline."""
        self._flush()
        deadline = self.conn.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = None if deadline is None else self._loop.call_at(deadline, self._on_timer)

    def _flush(self) -> None:
        """`changed` for commands that move no deadline earlier (data, credit)."""
        if self._direct is None or self._backed_up:
            self._wake_writer.set()
        else:
            self._write_now()
            if self.conn.closed:
                self._wake_writer.set()  # the writer drains the GOODBYE, then ends

    # -- relays: one per stream carried to a local socket ------------------------------------

    def open_relay(self, stream_id: int) -> Relay:
        return self.open_sink(stream_id, Relay)

    def open_sink(self, stream_id: int, make: SinkFactory[SinkT]) -> SinkT:
        """Hand `stream_id`'s events to a new sink (replacing any it had)."""
        sink = make(self, stream_id, self._forget)
        self._relays[stream_id] = sink
        return sink

    def detach_relay(self, stream_id: int) -> tuple[Relay, asyncio.StreamReader,
                                                     asyncio.StreamWriter] | None:
        """Stop relaying `stream_id` and hand its socket back (see `Relay.detach`); a sink
        that is not a relay has no socket to hand back: it is told the stream was reset."""
        sink = self._relays.pop(stream_id, None)
        self._sent_last.pop(stream_id, None)
        if sink is not None and not isinstance(sink, Relay):
            sink.on_reset(NOT_ACCEPTED)
            return None
        caller = None if sink is None else sink.detach()
        return None if sink is None or caller is None else (sink, *caller)

    def drop_relay(self, stream_id: int) -> None:
        """The stream never reached a socket (declined, or the agent gave up on it)."""
        self._forget(stream_id)

    def relaying(self, opened_by_peer: bool = False) -> bool:
        """Whether any stream is relayed (only those the peer opened, if asked)."""
        return any(not (opened_by_peer and self.conn.opened_here(sid)) for sid in self._relays)

    def awaiting_answer(self) -> bool:
        """Whether a stream's opener spoke last: an answer is still to come."""
        return any(to_peer == self.conn.opened_here(sid)
                   for sid, to_peer in self._sent_last.items() if self.conn.is_active(sid))

    def _forget(self, stream_id: int) -> None:
        self._relays.pop(stream_id, None)
        self._sent_last.pop(stream_id, None)

    def dispatch(self, events: list[MuxEvent]) -> None:
        if self._deliver(events):
            self.changed()
        else:  # stream events only: their sinks' commands re-arm the timer where they must
            self._flush()

    def _deliver(self, events: list[MuxEvent]) -> bool:
        """Hand events out; whether any went to the role's handler (which may have issued
        commands that move a deadline earlier) or closed the tunnel."""
        handled = False
        for event in events:
            relay = self._relays.get(getattr(event, "stream_id", 0))
            if relay is not None and type(event) is DataReceived:
                self.moved += len(event.data)
                self._sent_last[event.stream_id] = False
                relay.on_data(event.data)
            elif relay is not None and isinstance(event, StreamEnded):
                relay.on_eof()
            elif relay is not None and isinstance(event, CreditAvailable):
                relay.on_credit()
            elif relay is not None and isinstance(event, StreamReset):
                self._forget(event.stream_id)
                relay.on_reset(event.reason)
            else:
                handled = True
                self._on_event(event)
                if isinstance(event, Closed):
                    log.info("%s: tunnel closed: %s", self.label, event.reason)
                    if not self._closed.done():
                        self._closed.set_result(event.reason)
        return handled

    def close(self, reason: str) -> None:
        self.dispatch(self.conn.close(reason))

    # -- StreamIO: the commands relays use; safe after the stream or tunnel ended -----------

    def credit(self, stream_id: int) -> int:
        return self.conn.credit(stream_id)

    def is_active(self, stream_id: int) -> bool:
        return self.conn.is_active(stream_id)

    def send(self, stream_id: int, data: bytes | memoryview) -> bool:
        if not self.conn.is_active(stream_id) or self.closed:
            return False
        self.moved += len(data)
        self._sent_last[stream_id] = True
        self.conn.send_data(stream_id, data)
        self._flush()
        return True

    def send_fin(self, stream_id: int) -> None:
        if self.conn.is_active(stream_id) and not self.closed:
            self.conn.send_fin(stream_id)
            self.changed()

    def acknowledge(self, stream_id: int, size: int) -> None:
        if not self.closed and self.conn.acknowledge(stream_id, size, self.now()):
            self._flush()  # a WINDOW to send (most acknowledgements only count)

    def reset(self, stream_id: int, reason: str) -> None:
        if not self.closed:
            self.conn.reset(stream_id, reason)
            self.changed()

    # -- internals ----------------------------------------------------------------------------

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        # One loop turn later: after a stall the timer and the read of input that arrived in
        # time become ready together, and the deadline must not be judged before that input
        # (an ACCEPT in time would still miss the accept deadline, pings trip the peer timeout).
        self._loop.call_soon(self._check_deadlines)

    def _check_deadlines(self) -> None:
        if not self.conn.closed:
            self._deliver(self.conn.handle_timeout(self.now()))
            self.changed()  # the timer fired: always armed again

    async def _read_loop(self) -> None:
        while not self.conn.closed:
            try:
                data = await self._transport.recv()
            except Exception as exc:  # noqa: BLE001 - any failure of the pipe ends the tunnel
                self.on_end(exc)
                return
            if data:
                self.on_bytes(data)
            else:
                self.on_end(None)

    def on_bytes(self, data: bytes | memoryview) -> None:  # Receiver
        try:
            events = self.conn.receive_data(data, self.now())
        except RemoteProtocolError as exc:
            log.warning("%s: protocol error: %s", self.label, exc)
            events = self.conn.close(f"protocol error: {exc}")
        self.dispatch(events)

    def on_end(self, error: Exception | None) -> None:
        if error is None:
            self.dispatch(self.conn.receive_eof())
        else:  # any failure of the pipe ends the tunnel
            self.dispatch(self.conn.close(f"the tunnel connection failed: {_describe(error)}"))

    def _write_now(self) -> None:
        """Direct transports: hand the frames over at once (one event-loop turn saved per
        message); the writer task takes over while the pipe is backed up, and at the end."""
        assert self._direct is not None
        data = self.conn.data_to_send()
        if data and self._direct.write(data):
            self._backed_up = True
            self._wake_writer.set()

    async def _write_loop(self) -> None:
        while True:
            await self._wake_writer.wait()
            self._wake_writer.clear()
            try:
                if self._direct is not None:
                    await self._direct.drain()
                    self._backed_up = False
                    self._write_now()
                else:
                    data = self.conn.data_to_send()
                    for start in range(0, len(data), MAX_SEND):
                        await self._transport.send(data[start:start + MAX_SEND])
            except Exception as exc:  # noqa: BLE001 - any failure of the pipe ends the tunnel
                self._backed_up = True  # nothing more goes to a failed pipe
                self.dispatch(self.conn.close(f"the tunnel connection failed: {_describe(exc)}"))
                return
            if self.conn.closed and not self._wake_writer.is_set():
                return


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
