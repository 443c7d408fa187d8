"""Where one routed HTTP/1.1 request goes, and the connection that carries it there.

A `Destination` is the app or one owner's tunnel; an `Http1Upstream` is one keep-alive connection to
it (a TCP connection to the app, or a tunnel stream as an `OwnerStream`), spoken to with an
h11 client connection. The caller's connection keeps one upstream per destination.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import h11

from innerloop.agent.owner_stream import Ends, OwnerStream
from innerloop.tunnel.sockets import abort, tune

log = logging.getLogger(__name__)
READ_SIZE = 64 * 1024


class Destination(Protocol):
    """The app, or one owner's tunnel (one stream per caller connection)."""

    @property
    def key(self) -> object:
        """Equal for every request that may share one upstream connection."""

    @property
    def label(self) -> str: ...

    async def connect(self) -> Ends | None:
        """A new connection, or None when the destination is gone (the owner left, the app
        refuses connections)."""


def declined(writer: asyncio.StreamWriter) -> bool:
    """The connection is an owner's stream the client did not accept."""
    transport = writer.transport
    return isinstance(transport, OwnerStream) and transport.declined


class UpstreamFailed(Exception):
    """The upstream connection ended or broke the protocol before its answer was complete."""


_STAND_INS: dict[tuple[bytes, bool], h11.Request] = {}


def stand_in(method: bytes, upgrade: bool) -> h11.Request:
    """A request with what decides its answer's framing (the method, an upgrade offer) and
    nothing else: h11 follows an answer only to a request it wrote itself."""
    request = _STAND_INS.get((method, upgrade))
    if request is None:
        headers = [(b"host", b""), (b"connection", b"upgrade"), (b"upgrade", b"x")] if upgrade \
            else [(b"host", b"")]
        request = h11.Request(method=method, target=b"/", headers=headers)
        if len(_STAND_INS) < 64:
            _STAND_INS[method, upgrade] = request
    return request


END = h11.EndOfMessage()


class Http1Upstream:
    """The caller's request goes out as the bytes it came in; the answer goes back as the
    bytes that arrive, and h11 parses it (after they went) only to find where it ends."""

    def __init__(self, destination: Destination, ends: Ends) -> None:
        self.destination = destination
        self.reader, self.writer = ends
        self.conn = h11.Connection(h11.CLIENT)
        self.answered = 0  # responses completed: a reused connection may be closed under us
        tune(self.writer)

    @classmethod
    async def open(cls, destination: Destination) -> Http1Upstream | None:
        ends = await destination.connect()
        return None if ends is None else cls(destination, ends)

    @property
    def reusable(self) -> bool:
        """Idle on both sides and not closed by the other end while idle."""
        return (self.conn.our_state is h11.IDLE and self.conn.their_state is h11.IDLE
                and not self.reader.at_eof() and not self.writer.is_closing()
                and self.reader.exception() is None)

    @property
    def keeps_alive(self) -> bool:
        """The answer is complete and did not say it closes the connection."""
        return self.conn.their_state is h11.DONE

    @property
    def declined(self) -> bool:
        """An owner's stream the client did not accept (its local process refused it)."""
        return declined(self.writer)

    @property
    def switched(self) -> bool:
        return self.conn.our_state is h11.SWITCHED_PROTOCOL

    def start(self, method: bytes, upgrade: bool, data: bytes) -> None:
        """Send a request (``data``: its bytes as the caller sent them, or their start); h11's
        state follows once the bytes are on their way."""
        self.writer.write(data)
        self.conn.send(stand_in(method, upgrade))
        self.conn.send(END)

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    async def drain(self) -> None:
        try:
            await self.writer.drain()
        except ConnectionError as exc:
            raise UpstreamFailed(f"{self.destination.label}: {exc}") from None

    def buffered_event(self) -> h11.Event | type[h11.NEED_DATA | h11.PAUSED]:
        """The next event of the answer, without reading."""
        try:
            event = self.conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise UpstreamFailed(f"{self.destination.label}: bad HTTP: {exc}") from None
        if isinstance(event, h11.ConnectionClosed):
            raise UpstreamFailed(f"{self.destination.label} closed the connection")
        return event

    def received(self, data: bytes) -> None:
        """Bytes of the answer read (and passed on) elsewhere: h11 reads them too."""
        if data:  # (no bytes would tell h11 the connection ended)
            self.conn.receive_data(data)

    async def receive(self) -> bytes:
        """Read more of the answer; returns the bytes read (for the caller, as they are)."""
        try:
            data = await self.reader.read(READ_SIZE)
        except ConnectionError as exc:
            raise UpstreamFailed(f"{self.destination.label}: {exc}") from None
        self.conn.receive_data(data)
        return data

    def next_cycle(self) -> bool:
        """After an exchange: ready for the next request (else the caller must drop us)."""
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
            self.answered += 1
            return True
        return False

    def close(self) -> None:
        self.writer.close()

    def abort(self) -> None:
        abort(self.writer)
