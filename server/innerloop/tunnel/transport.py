"""The byte pipe a tunnel runs on (docs/architecture.md, "Transport").

The Kubernetes port-forward client and a plain TCP connection both implement ``Transport``;
tests and the agent use ``TcpTransport``. Both also push what arrives (`PushReceive`): the
`Link` then decodes it inside the socket's own callback, with no task woken per message.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol, runtime_checkable

from innerloop.tunnel.sockets import take_over, tune

CLOSE_FLUSH_TIMEOUT = 1.0


class Transport(Protocol):
    async def recv(self) -> bytes:
        """The next bytes from the peer; b"" at EOF."""
        ...

    async def send(self, data: bytes) -> None:
        """Write all of ``data``; returns once the pipe took it (backpressure)."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class DirectWrite(Protocol):
    """A Transport that takes bytes at once, without a task switch: the `Link` writes each
    batch of frames as it is made and waits (``drain``) only while the pipe is backed up."""

    def write(self, data: bytes) -> bool:
        """Queue ``data`` (never blocks); True if the pipe is backed up: ``drain`` first."""
        ...

    async def drain(self) -> None: ...


class Receiver(Protocol):
    """What a `PushReceive` transport hands its input to, as it arrives."""

    def on_bytes(self, data: bytes) -> None: ...

    def on_end(self, error: Exception | None) -> None:
        """The pipe ended: cleanly (None) or with ``error``; nothing follows."""


@runtime_checkable
class PushReceive(Protocol):
    """A Transport that can hand its input to a `Receiver` from the socket's callback instead
    of waking a reader task per message (``recv`` must not be used after)."""

    def start_receiving(self, receiver: Receiver) -> None:
        """From now on (input queued so far first) every input goes to ``receiver``."""
        ...


class Inbox:
    """Input from protocol callbacks: to the `Receiver` once set, queued for ``get`` till then."""

    def __init__(self) -> None:
        self._queue: deque[bytes] = deque()
        self._ended = False
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._receiver: Receiver | None = None

    def put(self, data: bytes) -> None:
        if self._receiver is not None:
            self._receiver.on_bytes(data)
        elif not self._ended:
            self._queue.append(data)
            self._wake()

    def end(self, error: Exception | None) -> None:
        if self._ended:
            return
        self._ended, self._error = True, error
        if self._receiver is not None:
            self._receiver.on_end(error)
        self._wake()

    @property
    def ended(self) -> bool:
        return self._ended

    async def get(self) -> bytes:
        while not self._queue:
            if self._ended:
                if self._error is not None:
                    raise self._error
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def deliver_to(self, receiver: Receiver) -> None:
        while self._queue:
            receiver.on_bytes(self._queue.popleft())
        self._receiver = receiver
        if self._ended:
            receiver.on_end(self._error)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class TcpTransport(asyncio.Protocol):
    """A Transport over a TCP connection, as its asyncio protocol."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._writer: asyncio.StreamWriter | None = None  # kept: its __del__ closes the socket
        self._inbox = Inbox()
        self._paused = False
        self._drained: asyncio.Future[None] | None = None
        self._closed = asyncio.get_running_loop().create_future()

    @classmethod
    async def connect(cls, host: str, port: int) -> TcpTransport:
        _, transport = await asyncio.get_running_loop().create_connection(cls, host, port)
        return transport

    @classmethod
    def take(cls, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> TcpTransport:
        transport = cls()
        transport._writer = writer
        take_over(reader, writer, transport)
        return transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        tune(transport)

    def data_received(self, data: bytes) -> None:
        self._inbox.put(data)

    def eof_received(self) -> bool:
        self._inbox.end(None)
        return True  # our GOODBYE may still be on its way out; close() ends the connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._inbox.end(None)  # a reset ends the tunnel as an EOF does: the peer is gone
        self._paused = False
        self._wake_drain(exc)
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_drain(None)

    async def recv(self) -> bytes:
        return await self._inbox.get()

    def start_receiving(self, receiver: Receiver) -> None:
        self._inbox.deliver_to(receiver)

    async def send(self, data: bytes) -> None:
        self.write(data)
        await self.drain()

    def write(self, data: bytes) -> bool:
        assert self._transport is not None
        self._transport.write(data)
        return self._transport.get_write_buffer_size() > 0

    async def drain(self) -> None:
        assert self._transport is not None
        if self._transport.is_closing():
            await asyncio.sleep(0)  # let connection_lost run first, as StreamWriter does
            if self._closed.done():
                raise ConnectionResetError("the connection is closed")
        if self._paused:
            self._drained = self._drained or asyncio.get_running_loop().create_future()
            await asyncio.shield(self._drained)

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()  # after what is buffered; a peer that stopped reading
            try:                     # is not waited for
                await asyncio.wait_for(asyncio.shield(self._closed), CLOSE_FLUSH_TIMEOUT)
            except asyncio.TimeoutError:
                self._transport.abort()

    def _wake_drain(self, exc: Exception | None) -> None:
        waiter, self._drained = self._drained, None
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)
