"""Mirror mode for HTTP/2 (gRPC): copies of a caller connection's matching streams, per owner.

Each mirror owner gets one h2 client connection per caller connection (over a tunnel stream,
like a routed owner). A caller stream the app serves is copied there as it arrives: headers,
DATA, trailers; the owner's answers are read only to keep its windows open and to know how many
copies it has not answered yet, then dropped. The app's path never waits: a copy is dropped and
counted when its owner is paused, its connection cannot be opened, it has `MAX_UNANSWERED`
copies open, or the copy's h2 window or the tunnel cannot take the next DATA now (that copy is
reset, as a copy cut off mid-body must not look whole).
"""

from __future__ import annotations

import asyncio
import logging

import h2.errors
import h2.events
import h2.exceptions

from innerloop.agent.h2side import H2Side, Headers, h2_connection
from innerloop.agent.mirror import MAX_UNANSWERED, MirrorTarget
from innerloop.agent.owner_stream import congested
from innerloop.agent.upstream import READ_SIZE
from innerloop.tunnel.sockets import abort

log = logging.getLogger(__name__)


class _CopyConnection:
    """One owner's h2 connection for one caller connection's copies."""

    def __init__(self, side: H2Side) -> None:
        self.side = side
        self.open: set[int] = set()  # copy streams not answered (ended or reset) yet
        side.task = asyncio.ensure_future(self._read_answers())

    @property
    def usable(self) -> bool:
        return self.side.task is not None and not self.side.task.done() \
            and not self.side.writer.is_closing()

    async def _read_answers(self) -> None:
        reader = self.side.reader
        assert reader is not None
        try:
            while data := await reader.read(READ_SIZE):
                for event in self.side.conn.receive_data(data):
                    if isinstance(event, h2.events.DataReceived):
                        self.side.conn.acknowledge_received_data(
                            event.flow_controlled_length or 0, event.stream_id)
                    if isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                        self.open.discard(event.stream_id)
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        return
                self.side.flush()
        except (h2.exceptions.ProtocolError, ConnectionError):
            pass
        finally:
            abort(self.side.writer)

    def close(self) -> None:
        if self.side.task is not None:
            self.side.task.cancel()
        self.side.writer.close()


class H2Copies:
    """The copies one h2 caller connection sends."""

    def __init__(self) -> None:
        self._connections: dict[object, _CopyConnection] = {}
        self._copies: dict[int, list[tuple[MirrorTarget, _CopyConnection, int]]] = {}
        self._starting: dict[int, bool] = {}  # caller stream → more of it came meanwhile

    async def start(self, caller_stream: int, targets: list[MirrorTarget], headers: Headers,
                    ended: bool) -> None:
        """Begin copying a caller stream (its request headers) to these mirror claims. A body
        that went on while a copy connection was being opened spoils the copies: dropped."""
        copies = []
        self._starting[caller_stream] = False
        for target in targets:
            connection = None if target.paused else await self._connection(target)
            if connection is None or len(connection.open) >= MAX_UNANSWERED \
                    or congested(connection.side.writer):
                target.counters.dropped += 1
                continue
            try:
                stream_id = connection.side.conn.get_next_available_stream_id()
                connection.side.conn.send_headers(stream_id, headers, end_stream=ended)
            except h2.exceptions.ProtocolError:  # the copy connection is going away
                target.counters.dropped += 1
                continue
            connection.open.add(stream_id)
            connection.side.flush()
            if ended:
                target.counters.copied += 1
            else:
                copies.append((target, connection, stream_id))
        if copies:
            self._copies[caller_stream] = copies
        if self._starting.pop(caller_stream):
            self.reset(caller_stream)

    def data(self, caller_stream: int, data: bytes, end: bool) -> None:
        """More of a copied request body (``end``: the last of it)."""
        if caller_stream in self._starting:
            self._starting[caller_stream] = True
        for target, connection, stream_id in self._copies.get(caller_stream, []):
            conn = connection.side.conn
            try:
                fits = (not congested(connection.side.writer)
                        and conn.local_flow_control_window(stream_id) >= len(data)
                        and len(data) <= conn.max_outbound_frame_size)
                if not fits:
                    raise h2.exceptions.FlowControlError("no window for the copy")
                conn.send_data(stream_id, data, end_stream=end)
            except h2.exceptions.ProtocolError:
                self._cut(caller_stream, target, connection, stream_id)
                continue
            connection.side.flush()
        if end:
            self._finish(caller_stream)

    def trailers(self, caller_stream: int, headers: Headers) -> None:
        for target, connection, stream_id in self._copies.get(caller_stream, []):
            try:
                connection.side.conn.send_headers(stream_id, headers, end_stream=True)
            except h2.exceptions.ProtocolError:
                self._cut(caller_stream, target, connection, stream_id)
                continue
            connection.side.flush()
        self._finish(caller_stream)

    def reset(self, caller_stream: int) -> None:
        """The caller reset its stream: its copies are cut too."""
        for copy in list(self._copies.get(caller_stream, [])):
            self._cut(caller_stream, *copy)
        self._copies.pop(caller_stream, None)

    def close(self) -> None:
        for caller_stream in list(self._copies):
            self.reset(caller_stream)
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def _finish(self, caller_stream: int) -> None:
        for target, _, _ in self._copies.pop(caller_stream, []):
            target.counters.copied += 1

    def _cut(self, caller_stream: int, target: MirrorTarget, connection: _CopyConnection,
             stream_id: int) -> None:
        target.counters.dropped += 1
        self._copies[caller_stream] = [c for c in self._copies.get(caller_stream, [])
                                       if c[2] != stream_id or c[1] is not connection]
        try:
            connection.side.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        except h2.exceptions.ProtocolError:
            pass
        connection.open.discard(stream_id)
        connection.side.flush()

    async def _connection(self, target: MirrorTarget) -> _CopyConnection | None:
        key = target.destination.key
        connection = self._connections.get(key)
        if connection is not None and connection.usable:
            return connection
        ends = await target.destination.connect()
        if ends is None:
            return None
        reader, writer = ends
        side = H2Side(h2_connection(True), writer, target.destination.label, reader)
        side.flush()  # the preface
        connection = self._connections[key] = _CopyConnection(side)
        return connection
