"""The tunnel multiplexer, sans-I/O: bytes and commands in, events and bytes out.

One ``ClientConnection`` (laptop) talks to one ``AgentConnection`` (pod) over any byte pipe.
Neither reads a clock nor owns a socket: every call that depends on time takes ``now``,
``next_deadline()`` says when to call ``handle_timeout(now)`` next, and ``data_to_send()`` hands
out the bytes to write. Rules are in docs/protocol.md.

Every event-returning call returns what happened since the previous such call. If
``receive_data`` raises ``RemoteProtocolError``, call ``close(reason)``: it returns the events of
the frames that preceded the bad one, then the close events.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable

from innerloop.core.errors import LocalProtocolError, RemoteProtocolError
from innerloop.core.frame_decoder import FrameDecoder
from innerloop.core.frames import (
    DATA_CODE,
    HEADER,
    MAX_PAYLOAD,
    Accept,
    Data,
    Dial,
    Fin,
    Frame,
    Goodbye,
    Open,
    Ping,
    Pong,
    Reset,
    Window,
    encode,
)
from innerloop.core.mux_events import (
    Closed,
    CreditAvailable,
    DataReceived,
    HandshakeDone,
    MuxEvent,
    StreamAccepted,
    StreamEnded,
    StreamReset,
)
from innerloop.core.streams import MAX_CREDIT, Stream

DEFAULT_WINDOW = 1024 * 1024
"""Per-stream credit at the start. Through the API server a credit round trip takes
milliseconds, so throughput tops out near window ÷ RTT: 1 MiB doubled bulk rates over 256 KiB
on the testbed (docs/benchmarks.md) while bounding what one stalled stream may pin in memory."""
MAX_WINDOW = 16 * 1024 * 1024
"""What a moving stream's window may grow to (``Stream._grow``): the bandwidth-delay product
of a port-forward under load is a few MiB."""
PING_INTERVAL = 0.5
PEER_TIMEOUT = 2.0
ACCEPT_TIMEOUT = 0.3
ACCEPT_LIMIT_FACTOR = 10
"""A stream offered during a burst waits while the client keeps answering others, but at most
this many accept timeouts (3 s)."""
_MAX_REASON = 1024


class ConnectionState(enum.Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSED = "closed"


def valid_window(window: int) -> bool:
    return 0 < window <= MAX_CREDIT


def short_reason(reason: str) -> str:
    return reason if len(reason) <= _MAX_REASON else reason[:_MAX_REASON - 1] + "…"


class Connection(abc.ABC):
    """What both ends share: streams, credit, keepalive, close.

    Either end opens streams (the agent with OPEN, the client with DIAL), from its own half of
    the ids: the client's are even, the agent's odd, so neither waits for the other to pick one.
    The other end ACCEPTs (or RESETs) a stream before it may send on it.
    """

    peer_role: str
    own_parity: int  # stream_id % 2 of the streams this end opens

    def __init__(self, *, now: float, window: int = DEFAULT_WINDOW,
                 ping_interval: float = PING_INTERVAL, peer_timeout: float = PEER_TIMEOUT,
                 max_payload: int = MAX_PAYLOAD, max_window: int = MAX_WINDOW) -> None:
        if not valid_window(window):
            raise LocalProtocolError(f"window {window} out of range")
        if not 0 < max_payload <= MAX_PAYLOAD:
            raise LocalProtocolError(f"max_payload {max_payload} out of range")
        self.window = window
        self.max_window = min(max_window, MAX_CREDIT)
        self.state = ConnectionState.HANDSHAKE
        self.close_reason: str | None = None
        self.rtt: float | None = None  # seconds, from the latest PING/PONG
        self._ping_interval = ping_interval
        self._peer_timeout = peer_timeout
        self._max_payload = max_payload
        self._decoder = FrameDecoder(max_payload)
        self._out: list[bytes | memoryview] = []
        self._events: list[MuxEvent] = []
        self._streams: dict[int, Stream] = {}
        self._highest = {0: 0, 1: -1}  # by parity: the latest id opened; next is +2
        self._peer_window = 0
        self._last_received = now
        self._next_ping: float | None = None
        self._ping_token = 0
        self._ping_sent: dict[int, float] = {}

    @property
    def closed(self) -> bool:
        return self.state is ConnectionState.CLOSED

    # -- inputs -------------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> list[MuxEvent]:
        """Feed bytes from the peer; raises RemoteProtocolError on anything malformed."""
        if self.state is ConnectionState.CLOSED:
            return []
        self._last_received = now
        self._decoder.feed(data)
        while not self.closed and (frame := self._decoder.next_frame()) is not None:
            self._handle(frame, now)
        return self._take_events()

    def receive_eof(self) -> list[MuxEvent]:
        """The byte pipe ended (without a GOODBYE if the connection is still open)."""
        if self.state is not ConnectionState.CLOSED:
            self._shut(f"the {self.peer_role} went away without saying goodbye")
        return self._take_events()

    def handle_timeout(self, now: float) -> list[MuxEvent]:
        """Act on every deadline that has passed: peer silence, pings, accept deadlines."""
        if self.state is ConnectionState.CLOSED:
            return []
        if now >= self._last_received + self._peer_timeout:
            self._shut(f"the {self.peer_role} was silent for {self._peer_timeout:g} s")
            self._send(Goodbye(short_reason(self.close_reason or "")))
            return self._take_events()
        if self._next_ping is not None and now >= self._next_ping:
            self._ping_token += 1
            self._ping_sent = {self._ping_token: now}
            self._send(Ping(self._ping_token))
            self._next_ping = now + self._ping_interval
        self._expire(now)
        return self._take_events()

    def next_deadline(self) -> float | None:
        """When ``handle_timeout`` must run next; None once closed."""
        if self.state is ConnectionState.CLOSED:
            return None
        deadlines = [self._last_received + self._peer_timeout, *self._stream_deadlines()]
        if self._next_ping is not None:
            deadlines.append(self._next_ping)
        return min(deadlines)

    def data_to_send(self) -> bytes:
        out, self._out = b"".join(self._out), []
        return out

    # -- stream commands ----------------------------------------------------------------------

    def credit(self, stream_id: int) -> int:
        """How many bytes ``send_data`` accepts now on this stream (0 once it is gone)."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.sent_fin:
            return 0
        return stream.send_credit if stream.accepted or self.opened_here(stream_id) else 0

    def receive_window(self, stream_id: int) -> int:
        """The window this end grants the peer on the stream now (it grows, see `Stream`);
        0 once the stream is gone."""
        stream = self._streams.get(stream_id)
        return 0 if stream is None else stream.window

    def is_active(self, stream_id: int) -> bool:
        return stream_id in self._streams

    def opened_here(self, stream_id: int) -> bool:
        """This end opened the stream (OPEN on the agent, DIAL on the client), not the peer."""
        return stream_id % 2 == self.own_parity

    def accept(self, stream_id: int) -> None:
        """Take a stream the peer opened; only then may we send on it."""
        stream = self._sendable(stream_id)
        if self.opened_here(stream_id):
            raise LocalProtocolError(f"stream {stream_id} was opened here; the "
                                     f"{self.peer_role} accepts it")
        if stream.accepted:
            raise LocalProtocolError(f"stream {stream_id} accepted twice")
        stream.accepted = True
        self._send(Accept(stream_id))

    def send_data(self, stream_id: int, data: bytes | memoryview) -> None:
        """Queue DATA; more than ``credit(stream_id)`` bytes is a LocalProtocolError. The
        frames point into ``data`` until `data_to_send`: a memoryview must be of immutable
        bytes (anything else writable is copied)."""
        stream = self._sendable(stream_id, data=True)
        stream.on_send(len(data))
        if stream.replay is not None:
            stream.replay += data
        view = data if type(data) is memoryview and data.readonly else memoryview(
            data if type(data) is bytes else bytes(data))
        for start in range(0, len(data), self._max_payload):  # joined once, in data_to_send
            chunk = view[start:start + self._max_payload]
            self._out += (HEADER.pack(len(chunk), DATA_CODE, stream_id), chunk)

    def send_fin(self, stream_id: int) -> None:
        """Half-close our direction of the stream."""
        stream = self._sendable(stream_id, data=True)
        if stream.sent_fin:
            raise LocalProtocolError(f"stream {stream_id}: FIN sent twice")
        stream.sent_fin = True
        self._send(Fin(stream_id))
        if stream.finished:
            del self._streams[stream_id]

    def acknowledge(self, stream_id: int, size: int, now: float | None = None) -> bool:
        """Our side consumed ``size`` received bytes: hand the credit back to the peer (with
        ``now``, the window may grow: see `Stream`). True if that queued a WINDOW to send."""
        self._check_open()
        stream = self._streams.get(stream_id)
        if stream is None:
            return False  # gone: the peer no longer needs credit for it
        grant = stream.consumed(size, now, self.rtt)
        if grant:
            self._send(Window(stream_id, grant))
        return grant > 0

    def reset(self, stream_id: int, reason: str) -> None:
        """Abort the stream in both directions (before ACCEPT, on the client: decline it)."""
        self._check_open()
        if self._streams.pop(stream_id, None) is not None:
            self._send(Reset(stream_id, short_reason(reason)))

    def close(self, reason: str) -> list[MuxEvent]:
        """Say goodbye with ``reason``; every stream ends. Idempotent."""
        if self.state is not ConnectionState.CLOSED:
            self._shut(reason)
            self._send(Goodbye(short_reason(reason)))
        return self._take_events()

    # -- internals ----------------------------------------------------------------------------

    def _handle(self, frame: Frame, now: float) -> None:
        if type(frame) is Data and self.state is ConnectionState.OPEN:  # the common frame first
            stream = self._stream_for(frame)
            if stream is not None and frame.data:
                stream.on_receive(len(frame.data))
                self._events.append(DataReceived(frame.stream_id, frame.data))
        elif self.state is ConnectionState.HANDSHAKE and not isinstance(frame, Goodbye):
            self._handle_handshake(frame, now)
        elif isinstance(frame, Goodbye):
            self._shut(f"the {self.peer_role} closed the tunnel: {frame.reason}")
        elif isinstance(frame, Ping):
            self._send(Pong(frame.token))
        elif isinstance(frame, Pong):
            sent = self._ping_sent.pop(frame.token, None)
            if sent is not None:
                self.rtt = now - sent
        elif isinstance(frame, Accept):
            self._handle_accept(frame, now)
        elif isinstance(frame, Window):
            stream = self._stream_for(frame)
            if stream is not None:
                stream.on_credit(frame.increment)
                self._events.append(CreditAvailable(frame.stream_id))
        elif isinstance(frame, Fin):
            stream = self._stream_for(frame)
            if stream is not None:
                if stream.received_fin:
                    raise RemoteProtocolError(f"stream {frame.stream_id}: FIN received twice")
                stream.received_fin = True
                self._events.append(StreamEnded(frame.stream_id))
                if stream.finished:
                    del self._streams[frame.stream_id]
        elif isinstance(frame, Reset):
            self._handle_reset(frame, now)
        else:
            self._handle_role_frame(frame, now)

    def _stream_for(self, frame: Data | Window | Fin | Reset | Accept) -> Stream | None:
        """The live stream a frame names; None for one that already ended (a harmless race).

        Our own streams take no DATA or FIN before the peer's ACCEPT.
        """
        stream_id = frame.stream_id
        if stream_id > self._highest[stream_id % 2]:
            raise RemoteProtocolError(f"{type(frame).__name__.upper()} for stream "
                                      f"{stream_id}, which was never opened")
        stream = self._streams.get(stream_id)
        if (isinstance(frame, (Data, Fin)) and stream is not None and not stream.accepted
                and self.opened_here(stream_id)):
            raise RemoteProtocolError(f"{type(frame).__name__.upper()} on stream {stream_id} "
                                      f"before ACCEPT")
        return stream

    def _handle_accept(self, frame: Accept, now: float) -> None:
        if not self.opened_here(frame.stream_id):
            raise RemoteProtocolError(f"ACCEPT for stream {frame.stream_id}, which the "
                                      f"{self.peer_role} opened itself")
        stream = self._stream_for(frame)
        if stream is None:
            return  # we gave up on it already; the RESET is on its way
        if stream.accepted:
            raise RemoteProtocolError(f"stream {frame.stream_id} accepted twice")
        stream.accepted = True
        self._on_accepted(stream, now)
        self._events.append(StreamAccepted(frame.stream_id))

    def _open_own(self, route_port: int, make: Callable[[int], Open | Dial],
                  replay: bytearray | None = None) -> int:
        """Allocate the next id of our parity and send the frame that opens the stream."""
        self._check_open()
        stream_id = self._highest[self.own_parity] + 2
        wire = encode(make(stream_id))  # raises before anything changed if it does not fit
        self._highest[self.own_parity] = stream_id
        self._streams[stream_id] = Stream(stream_id, route_port, self.window, self._peer_window,
                                          replay=replay, max_window=self.max_window)
        self._out.append(wire)
        return stream_id

    def _peer_opened(self, frame: Open | Dial, route_port: int) -> None:
        """Register a stream the peer opened: an id of its parity, above its previous ones."""
        name = type(frame).__name__.upper()
        if self.opened_here(frame.stream_id):
            raise RemoteProtocolError(f"{name} on stream {frame.stream_id}: the {self.peer_role} "
                                      f"opens {'odd' if self.own_parity == 0 else 'even'} "
                                      f"ids only")
        if frame.stream_id <= self._highest[frame.stream_id % 2]:
            raise RemoteProtocolError(f"{name} reuses stream id {frame.stream_id}")
        self._highest[frame.stream_id % 2] = frame.stream_id
        self._streams[frame.stream_id] = Stream(frame.stream_id, route_port, self.window,
                                                self._peer_window, max_window=self.max_window)

    def _on_accepted(self, stream: Stream, now: float) -> None:
        """The peer accepted one of our streams."""

    def _handle_reset(self, frame: Reset, now: float) -> None:
        if self._stream_for(frame) is not None:
            del self._streams[frame.stream_id]
            self._events.append(StreamReset(frame.stream_id, frame.reason))

    @abc.abstractmethod
    def _handle_handshake(self, frame: Frame, now: float) -> None:
        """The peer's first frame."""

    @abc.abstractmethod
    def _handle_role_frame(self, frame: Frame, now: float) -> None:
        """A frame only one role may receive."""

    def _stream_deadlines(self) -> list[float]:
        return []

    def _expire(self, now: float) -> None:
        """Role-specific deadlines."""

    def _established(self, peer_window: int, peer_name: str, now: float) -> None:
        self.state = ConnectionState.OPEN
        self._peer_window = peer_window
        self._next_ping = now + self._ping_interval
        self._events.append(HandshakeDone(peer_name))

    def _shut(self, reason: str) -> None:
        self.state = ConnectionState.CLOSED
        self.close_reason = reason
        for stream_id in sorted(self._streams):
            self._events.append(self._stream_lost(self._streams[stream_id], reason))
        self._streams.clear()
        self._events.append(Closed(reason))

    def _stream_lost(self, stream: Stream, reason: str) -> MuxEvent:
        return StreamReset(stream.stream_id, reason)

    def _sendable(self, stream_id: int, data: bool = False) -> Stream:
        self._check_open()
        stream = self._streams.get(stream_id)
        if stream is None:
            raise LocalProtocolError(f"stream {stream_id} is not active")
        if data and not stream.accepted and not self.opened_here(stream_id):
            raise LocalProtocolError(f"stream {stream_id} must be accepted before sending")
        return stream

    def _check_open(self) -> None:
        if self.state is not ConnectionState.OPEN:
            raise LocalProtocolError(f"the tunnel is {self.state.value}")

    def _send(self, frame: Frame) -> None:
        self._out.append(encode(frame))

    def _take_events(self) -> list[MuxEvent]:
        events, self._events = self._events, []
        return events

    def _unexpected(self, frame: Frame) -> RemoteProtocolError:
        return RemoteProtocolError(f"the {self.peer_role} may not send "
                                   f"{type(frame).__name__.upper()} "
                                   f"while the tunnel is {self.state.value}")


