"""Carries one tunnel stream to and from a TCP socket, within the stream's credit.

Socket → tunnel: read only as many bytes as the peer granted, so backpressure reaches the
socket (TCP) instead of piling up in memory. Tunnel → socket: queue what the peer sends (never
more than our window), write it, and grant the credit back only once the socket took it.
Either side's FIN becomes a half-close on the other; a reset aborts the socket with RST.

A relay knows its tunnel only through `StreamIO` and never touches the tunnel's table of
relays: the `Link` that created it owns that table (as h2's connection owns its streams) and is
told through `on_finished` when this relay is done with its socket. A relay is one kind of
`StreamSink`; the link dispatches to any.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol, TypeVar

from innerloop.tunnel.sockets import abort, tune

log = logging.getLogger(__name__)
READ_SIZE = 64 * 1024
NOT_ACCEPTED = "the client did not accept the stream"
"""The reset a sink that is not a relay gets when its stream was not accepted."""


class StreamIO(Protocol):
    """The stream commands of a tunnel; safe to call after the stream or the tunnel ended."""

    label: str

    def credit(self, stream_id: int) -> int: ...

    def is_active(self, stream_id: int) -> bool: ...

    def send(self, stream_id: int, data: bytes) -> bool: ...

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


class Relay:
    tap: StreamTap | None = None

    def __init__(self, io: StreamIO, stream_id: int, on_finished: Callable[[int], None]) -> None:
        self.stream_id = stream_id
        self._link = io
        self._on_finished = on_finished
        self._inbound: deque[bytes] = deque()
        self._written = 0  # written to the socket, acknowledged once it drained
        self._inbound_eof = False
        self._inbound_ready = asyncio.Event()
        self._credit = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def attach(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Start relaying between the stream and this socket."""
        if self.tap is not None and self._inbound:  # what the peer sent before the socket
            self.tap.from_tunnel(b"".join(self._inbound))
        tune(writer)
        self._reader, self._writer = reader, writer
        self._tasks = [asyncio.ensure_future(self._to_tunnel(reader)),
                       asyncio.ensure_future(self._from_tunnel(writer))]
        self._finisher = asyncio.ensure_future(self._finish())

    def detach(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Stop relaying now and hand the socket back (the agent then serves it itself).

        Only the link calls it (`Link.detach_relay`), synchronously from the event handler; then
        await ``stopped()`` before reading: a ``StreamReader.read`` cancelled before it resumed
        consumes nothing, so no caller byte is lost between the event and the new reader.
        """
        reader, writer = self._reader, self._writer
        self._writer = None
        for task in self._tasks:
            task.cancel()
        if reader is None or writer is None:
            return None
        return reader, writer

    async def stopped(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- events from the link -----------------------------------------------------------------

    def on_data(self, data: bytes) -> None:
        if self.tap is not None:
            self.tap.from_tunnel(data)
        writer = self._writer
        if writer is not None and not self._inbound and not self._written:
            # straight to the socket: no task switch on the way to the local app or caller
            writer.write(data)
            if not writer.transport.get_write_buffer_size():
                self._link.acknowledge(self.stream_id, len(data))  # the kernel took it all
                return
            self._written = len(data)
        else:
            self._inbound.append(data)
        self._inbound_ready.set()

    def on_eof(self) -> None:
        self._inbound_eof = True
        self._inbound_ready.set()

    def on_credit(self) -> None:
        self._credit.set()

    def on_reset(self, reason: str) -> None:
        log.debug("%s: stream %d reset: %s", self._link.label, self.stream_id, reason)
        if self.tap is not None:
            self.tap.ended(reset=True)
        for task in self._tasks:
            task.cancel()
        if self._writer is not None:
            abort(self._writer)
            self._writer = None

    # -- pumps --------------------------------------------------------------------------------

    async def _to_tunnel(self, reader: asyncio.StreamReader) -> None:
        link, stream_id = self._link, self.stream_id
        while True:
            credit = link.credit(stream_id)
            if credit == 0:
                if not link.is_active(stream_id):
                    return
                self._credit.clear()
                await self._credit.wait()
                continue
            data = await reader.read(min(credit, READ_SIZE))
            if not data:
                link.send_fin(stream_id)
                return
            if self.tap is not None:
                self.tap.to_tunnel(data)
            if not link.send(stream_id, data):
                return

    async def _from_tunnel(self, writer: asyncio.StreamWriter) -> None:
        while True:
            if self._written:
                await writer.drain()
                written, self._written = self._written, 0
                self._link.acknowledge(self.stream_id, written)
            elif self._inbound:
                data = b"".join(self._inbound)
                self._inbound.clear()
                writer.write(data)
                self._written = len(data)
            elif self._inbound_eof:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            else:
                self._inbound_ready.clear()
                await self._inbound_ready.wait()

    async def _finish(self) -> None:
        """Close the socket once both directions ended, or reset the stream if one failed."""
        done, pending = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
        failed = [t.exception() for t in done if not t.cancelled() and t.exception() is not None]
        writer = self._writer
        if writer is None:
            return  # reset or detached: whoever did that owns the socket now
        self._writer = None
        self._on_finished(self.stream_id)
        if self.tap is not None:
            self.tap.ended(reset=bool(failed))
        if failed:
            for task in pending:
                task.cancel()
            reason = f"local connection failed: {failed[0]!r}"
            log.debug("%s: stream %d: %s", self._link.label, self.stream_id, reason)
            self._link.reset(self.stream_id, reason)
            abort(writer)
        else:
            writer.close()
