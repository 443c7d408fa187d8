"""Where one routed HTTP/1.1 request goes, and the connection that carries it there.

A `Destination` is the app or one owner's tunnel; an `Http1Upstream` is one keep-alive connection to
it (a TCP connection to the app, or a tunnel stream as an `OwnerStream`), spoken to with an
h11 client connection. The caller's connection keeps one upstream per destination.
"""

from __future__ import annotations

import logging
from typing import Protocol

import h11

from innerloop.agent.owner_stream import Ends
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


class UpstreamFailed(Exception):
    """The upstream connection ended or broke the protocol before its answer was complete."""


class Http1Upstream:
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

    def send(self, event: h11.Event) -> bytes:
        """Send an event; returns its bytes (mirrors copy them as they are)."""
        data = self.conn.send(event) or b""
        if data:
            self.writer.write(data)
        return data

    async def drain(self) -> None:
        try:
            await self.writer.drain()
        except ConnectionError as exc:
            raise UpstreamFailed(f"{self.destination.label}: {exc}") from None

    async def next_event(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise UpstreamFailed(f"{self.destination.label}: bad HTTP: {exc}") from None
            if event is h11.NEED_DATA:
                try:
                    data = await self.reader.read(READ_SIZE)
                except ConnectionError as exc:
                    raise UpstreamFailed(f"{self.destination.label}: {exc}") from None
                self.conn.receive_data(data)
            elif isinstance(event, h11.ConnectionClosed):
                raise UpstreamFailed(f"{self.destination.label} closed the connection")
            else:
                return event  # type: ignore[return-value]

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
