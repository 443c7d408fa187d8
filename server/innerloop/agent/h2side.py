"""The pieces of `h2route`: one h2 connection of the router, DATA waiting for a window, and a
stream's request kept until its owner answers (so a declined one can go to the app)."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import h2.exceptions
import h2.settings

Headers = list[tuple[bytes, bytes]]
STREAM_WINDOW = 1024 * 1024
CONNECTION_WINDOW = 4 * 1024 * 1024
MAX_REPLAY = 64 * 1024
"""A request to an owner is kept until the owner answers, up to this many bytes of body."""


@dataclass(eq=False)
class H2Side:
    """One h2 connection of the router and the socket under it."""

    conn: h2.connection.H2Connection
    writer: asyncio.StreamWriter
    label: str
    reader: asyncio.StreamReader | None = None
    task: asyncio.Task[None] | None = None
    pending: dict[int, deque[PendingChunk]] = field(default_factory=dict)  # waiting for window

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)


@dataclass
class PendingChunk:
    data: bytes
    end: bool
    source: H2Side
    source_stream: int
    flow: int  # flow-controlled length to acknowledge to the source once sent


def h2_connection(client_side: bool) -> h2.connection.H2Connection:
    """An h2 connection of the router, its preface queued. Its receive windows are the tunnel
    stream's (1 MiB a stream, 4 MiB the connection) rather than h2's 64 KiB, which would cap a
    stream at 64 KiB per round trip to the laptop; what they let in is at most what waits in
    `H2Side.pending`, since it is acknowledged only once forwarded."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=client_side, header_encoding=None, validate_inbound_headers=True))
    conn.local_settings = h2.settings.Settings(client=client_side, initial_values={
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW})
    conn.initiate_connection()
    conn.increment_flow_control_window(CONNECTION_WINDOW - 65535)
    return conn


@dataclass
class StreamReplay:
    """A request sent to an owner, kept until the owner answers."""

    headers: Headers
    ended: bool
    body: bytearray = field(default_factory=bytearray)

    def add(self, data: bytes, end: bool) -> bool:
        """Keep more of the body; False once it is too big to keep."""
        self.body += data
        self.ended = self.ended or end
        return len(self.body) <= MAX_REPLAY


def reset_stream(side: H2Side, stream_id: int, code: object) -> None:
    side.pending.pop(stream_id, None)
    try:
        side.conn.reset_stream(stream_id, int(code) if isinstance(code, int)
                               else h2.errors.ErrorCodes.CANCEL)
    except h2.exceptions.ProtocolError:
        pass


def acknowledge(side: H2Side, stream_id: int, flow: int) -> None:
    if flow:
        try:
            side.conn.acknowledge_received_data(flow, stream_id)
        except h2.exceptions.ProtocolError:
            pass
