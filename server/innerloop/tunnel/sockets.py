"""Socket details every relay needs: no Nagle delay, and a real RST when we abort."""

from __future__ import annotations

import asyncio
import socket
import struct


def tune(writer: asyncio.StreamWriter) -> None:
    """TCP_NODELAY: a relay forwards small request/response writes; Nagle would add 40 ms."""
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST, so the peer sees a reset rather than a clean (truncated) end."""
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.fileno() >= 0:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def peer_label(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
