"""Socket details every relay needs: no Nagle delay, a real RST when we abort, a connection
moved between a stream pair and a protocol of ours."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import cast


def tune(writer: asyncio.StreamWriter | asyncio.BaseTransport) -> None:
    """TCP_NODELAY: a relay forwards small request/response writes; Nagle would add 40 ms."""
    sock = writer.get_extra_info("socket")  # a transport's stand-in, not a socket.socket
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def abort(writer: asyncio.StreamWriter | asyncio.Transport) -> None:
    """Close with RST, so the peer sees a reset rather than a clean (truncated) end."""
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.fileno() >= 0:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    (writer.transport if isinstance(writer, asyncio.StreamWriter) else writer).abort()


def peer_label(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


def take_over(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
              protocol: asyncio.Protocol) -> asyncio.Protocol:
    """``protocol`` gets the connection (what the reader holds first); returns the pair's
    protocol. Keep ``writer`` referenced: a collected StreamWriter closes its socket."""
    # A cast, not an isinstance check: uvloop's transports do not subclass asyncio.Transport.
    transport = cast(asyncio.Transport, writer.transport)
    pair = transport.get_protocol()
    assert isinstance(pair, asyncio.Protocol)
    error = reader.exception()
    data = b"" if error is not None else _buffered(reader)
    eof = reader.at_eof()
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    if data:
        protocol.data_received(data)
    if error is not None or transport.is_closing():
        protocol.connection_lost(error)
    elif eof:
        protocol.eof_received()
    elif not transport.is_reading():
        transport.resume_reading()  # the reader may have paused it while full
    return pair


def give_back(transport: asyncio.Transport, pair: asyncio.Protocol, data: bytes,
              eof: bool) -> None:
    """Undo `take_over`, with what was read and not consumed (while nothing is unwritten)."""
    transport.set_write_buffer_limits()  # the defaults a StreamWriter expects
    transport.set_protocol(pair)
    if data:
        pair.data_received(data)
    if eof:
        pair.eof_received()
    elif not transport.is_reading():
        transport.resume_reading()


def _buffered(reader: asyncio.StreamReader) -> bytes:
    """What ``reader`` holds: each ``read`` is stepped once; one that would wait is closed."""
    chunks = []
    while not reader.at_eof():
        step = reader.read(64 * 1024)
        try:
            step.send(None)
        except StopIteration as done:
            chunks.append(done.value)
            continue
        step.close()
        break
    return b"".join(chunks)
