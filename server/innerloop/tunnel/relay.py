"""Carries one tunnel stream to and from a TCP socket, within the stream's credit.

Socket → tunnel: send as many bytes as the peer granted and pause reading the socket while
there is no credit, so backpressure reaches the socket (TCP) instead of piling up in memory.
Tunnel → socket: write what the peer sends (never more than our window) and grant the credit
back once the kernel took it.
Either side's FIN becomes a half-close on the other; a reset aborts the socket with RST.

A relay knows its tunnel only through `StreamIO` and never touches the tunnel's table of
relays: the `Link` that created it owns that table (as h2's connection owns its streams) and is
told through `on_finished` when this relay is done with its socket. A relay is one kind of
`StreamSink`; the link dispatches to any.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol, TypeVar, cast

from innerloop.tunnel.sockets import abort, give_back, take_over, tune

log = logging.getLogger(__name__)
NOT_ACCEPTED = "the client did not accept the stream"
"""The reset a sink that is not a relay gets when its stream was not accepted."""


class StreamIO(Protocol):
    """The stream commands of a tunnel; safe to call after the stream or the tunnel ended."""

    label: str

    def credit(self, stream_id: int) -> int: ...

    def is_active(self, stream_id: int) -> bool: ...

    def send(self, stream_id: int, data: bytes | memoryview) -> bool:
        """A memoryview must be of immutable bytes (the frames point into it until written)."""

    def send_fin(self, stream_id: int) -> None: ...

    def acknowledge(self, stream_id: int, size: int) -> None: ...

    def reset(self, stream_id: int, reason: str) -> None: ...


class StreamSink(Protocol):
    """What a `Link` hands one stream's events to: a `Relay` (a socket) or any other consumer
    (the agent's per-request router reads an owner's stream straight from here). The link
    creates it through a `SinkFactory`, so the link stays the only writer of its table."""

    def on_data(self, data: bytes) -> None: ...

    def on_eof(self) -> None: ...

    def on_credit(self) -> None: ...

    def on_reset(self, reason: str) -> None: ...


SinkT_co = TypeVar("SinkT_co", bound=StreamSink, covariant=True)
SinkT = TypeVar("SinkT", bound=StreamSink)


class StreamTap(Protocol):
    """Sees a relayed stream's bytes as they pass (the editor's request log); optional, so a
    relay without one pays one attribute test per chunk. Must not block nor raise."""

    def from_tunnel(self, data: bytes) -> None: ...

    def to_tunnel(self, data: bytes) -> None: ...

    def ended(self, reset: bool) -> None: ...


class SinkFactory(Protocol[SinkT_co]):
    """Builds a sink for one stream; ``on_finished(stream_id)`` takes it out of the table."""

    def __call__(self, io: StreamIO, stream_id: int,
                 on_finished: Callable[[int], None]) -> SinkT_co: ...


class Relay(asyncio.Protocol):
    """A stream's sink and its socket's protocol at once: no task, no loop turn between.
    Connect with it as the protocol, then `start`; or `attach` a stream pair."""

    tap: StreamTap | None = None

    def __init__(self, io: StreamIO, stream_id: int, on_finished: Callable[[int], None]) -> None:
        self.stream_id = stream_id
        self._link = io
        self._on_finished = on_finished
        self._transport: asyncio.Transport | None = None
        self._pair: tuple[asyncio.StreamReader, asyncio.StreamWriter, asyncio.Protocol] | None = \
            None  # from `attach`
        self._started = False
        self._held = bytearray()  # from the tunnel before the socket was started
        self._written = 0  # written to the socket, acknowledged once the kernel took it all
        self._write_paused = False
        self._peer_fin = False  # the tunnel's FIN: written as EOF once `_held` is out
        self._unsent: list[bytes | memoryview] = []
        """From the socket beyond the credit, in order (views of what was read, not copies);
        reading paused meanwhile."""
        self._socket_eof = False  # the socket's EOF: FIN once `_unsent` is out
        self._fin_sent = False
        self._done = False  # finished, reset or detached: the socket is no longer ours

    def attach(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Relay this stream pair's socket (taken over: do not use the pair)."""
        self._pair = (reader, writer, take_over(reader, writer, self))
        self.start()

    def start(self) -> None:
        """The stream may carry data now."""
        if self._started or self._done:
            return
        self._started = True
        if self._held:
            held, self._held = bytes(self._held), bytearray()
            self.on_data(held)
        self._flush()

    def detach(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Stop relaying and hand the stream pair back, its reader holding what the stream did
        not carry (`Link.detach_relay`, for a stream the peer never accepted)."""
        transport, pair, done = self._transport, self._pair, self._done
        self._done = True
        if transport is None or done or transport.is_closing():
            return None
        if pair is None:  # not from a stream pair: nothing to hand back to
            abort(transport)
            return None
        reader, writer, protocol = pair
        unsent, self._unsent = b"".join(self._unsent), []
        give_back(transport, protocol, unsent, self._socket_eof)
        return reader, writer

    # -- events from the link -----------------------------------------------------------------

    def on_data(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or not self._started:
            self._held += data
            return
        if self._done:
            return
        if self.tap is not None:
            self.tap.from_tunnel(data)
        transport.write(data)
        if self._write_paused:
            self._written += len(data)  # acknowledged in resume_writing
        else:
            self._link.acknowledge(self.stream_id, len(data))

    def on_eof(self) -> None:
        self._peer_fin = True
        if self._started and not self._write_paused:
            self._write_eof()

    def on_credit(self) -> None:
        self._flush()

    def on_reset(self, reason: str) -> None:
        log.debug("%s: stream %d reset: %s", self._link.label, self.stream_id, reason)
        if self.tap is not None:
            self.tap.ended(reset=True)
        if not self._done:
            self._done = True
            if self._transport is not None:
                abort(self._transport)

    # -- asyncio.Protocol: the socket ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport (the CLI runs on uvloop)
        self._transport = cast(asyncio.Transport, transport)
        tune(self._transport)
        self._transport.set_write_buffer_limits(0)  # resume_writing: the kernel took it all

    def data_received(self, data: bytes) -> None:
        if self._unsent or not self._started:
            self._unsent.append(data)
            self._pause_reading()
        else:
            self._send(data)

    def eof_received(self) -> bool:
        self._socket_eof = True
        if self._started and not self._unsent:
            self._send_fin()
        return True  # half-closed: the other direction goes on

    def connection_lost(self, exc: Exception | None) -> None:
        if self._done:
            return
        self._done = True
        self._on_finished(self.stream_id)
        reason = f"local connection failed: {exc!r}" if exc is not None else \
            "local connection closed"
        log.debug("%s: stream %d: %s", self._link.label, self.stream_id, reason)
        self._link.reset(self.stream_id, reason)
        if self.tap is not None:
            self.tap.ended(reset=True)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._done:
            return
        written, self._written = self._written, 0
        if written:
            self._link.acknowledge(self.stream_id, written)
        if self._peer_fin:
            self._write_eof()

    # -- internals ------------------------------------------------------------------------------

    def _send(self, data: bytes | memoryview) -> None:
        """To the tunnel within the stream's credit; the rest waits, reading paused (cut as
        views: a bulk sender ahead of its credit costs no copies here)."""
        credit = self._link.credit(self.stream_id)
        if len(data) > credit:
            view = memoryview(data)
            self._unsent.append(view[credit:])
            self._pause_reading()
            data = view[:credit]
        if data:
            if self.tap is not None:
                self.tap.to_tunnel(bytes(data))
            self._link.send(self.stream_id, data)

    def _flush(self) -> None:
        if not self._started or self._done:
            return
        if self._unsent:
            unsent, self._unsent = self._unsent, []
            for i, chunk in enumerate(unsent):
                self._send(chunk)
                if self._unsent:  # out of credit again: the rest waits behind what is left
                    self._unsent += unsent[i + 1:]
                    return
        if self._socket_eof:
            self._send_fin()
        elif self._transport is not None and not self._transport.is_reading():
            self._transport.resume_reading()
        if self._peer_fin and not self._write_paused:
            self._write_eof()

    def _pause_reading(self) -> None:
        if self._transport is not None and self._transport.is_reading():
            self._transport.pause_reading()

    def _send_fin(self) -> None:
        if not self._fin_sent:
            self._fin_sent = True
            self._link.send_fin(self.stream_id)
            self._maybe_finish()

    def _write_eof(self) -> None:
        transport = self._transport
        if transport is not None and not self._done and not transport.is_closing():
            if transport.can_write_eof():
                transport.write_eof()
            self._maybe_finish()

    def _maybe_finish(self) -> None:
        """Both directions ended cleanly: close the socket."""
        transport = self._transport
        if (self._fin_sent and self._peer_fin and not self._write_paused and not self._done
                and transport is not None):
            self._done = True
            self._on_finished(self.stream_id)
            if self.tap is not None:
                self.tap.ended(reset=False)
            transport.close()
