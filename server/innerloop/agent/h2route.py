"""Per-stream routing of one HTTP/2 cleartext caller connection (prior knowledge: gRPC), with h2.

h2 speaks on every side: a server connection towards the caller, one client connection per
destination (the app's TCP connection, one tunnel stream per owner) for this caller connection.
Each caller stream is decided by its own headers (``:method``, ``:path``, metadata) and opened
on its destination's connection; frames then go both ways stream by stream, so streaming calls
(server-streaming gRPC) keep working.

Flow control is end to end: DATA is forwarded only within the receiving side's window, and what
arrived is acknowledged to its sender only once forwarded, so nothing is buffered beyond one
window per stream. Bytes that are not HTTP/2 before the first stream is decided go to the app
as they came; a protocol error after that ends the connection (GOAWAY) and every stream on it.
Each stream is decided on its own task: one held (its owner paused with ``hold``) holds no other
stream. An owner whose client does not accept the stream (its local process refuses): its
streams whose request was kept (`StreamReplay`) are opened again on the app, the others are
refused (``REFUSED_STREAM``), and its next ones go to the app. Streams the app serves are copied
to matching mirror claims as they arrive (`h2mirror.H2Copies`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from innerloop.agent.h2mirror import H2Copies
from innerloop.agent.h2side import (
    H2Side,
    Headers,
    PendingChunk,
    StreamReplay,
    acknowledge,
    h2_connection,
    reset_stream,
)
from innerloop.agent.http1_parts import PREFACE
from innerloop.agent.mirror import MirrorTarget
from innerloop.agent.upstream import READ_SIZE, Destination, declined
from innerloop.tunnel.sockets import abort

log = logging.getLogger(__name__)


class StreamRoutes(Protocol):
    """What the router needs from the agent for one listen port."""

    async def route_parts(self, method: bytes, path: bytes, headers: Headers) -> Destination:
        """Where a request goes (waits while its owner holds it)."""

    def mirror_parts(self, method: bytes, path: bytes, headers: Headers) -> list[MirrorTarget]:
        """The mirror claims a request the app serves is copied to."""

    @property
    def app(self) -> Destination:
        """Serves what an owner's client did not accept."""

    async def raw_to_app(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         replay: bytes) -> None:
        """Not HTTP/2: serve the connection from the app as bytes."""


class NotHttp2(Exception):
    """The caller's bytes broke HTTP/2 before any stream was routed."""


class H2Router:
    """One caller connection; ``serve`` returns when it is done (every socket closed)."""

    def __init__(self, routes: StreamRoutes, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, label: str, prefix: bytes = b"") -> None:
        self.routes = routes
        self.reader = reader
        self.label = label
        self.caller = H2Side(h2_connection(False), writer, label)
        self._upstreams: dict[object, H2Side] = {}
        self._peer: dict[tuple[int, int], tuple[H2Side, int]] = {}  # (side id, stream) → other
        self._prefix = prefix
        self._replay: bytearray | None = bytearray()  # until the first stream is routed
        self._trailers: dict[tuple[H2Side, int], Headers] = {}
        self._ended: set[tuple[int, int]] = set()  # (side id, stream) we ended on that side
        self._opening: dict[int, list[h2.events.Event]] = {}  # caller stream → events meanwhile
        self._connecting: dict[object, asyncio.Future[H2Side | None]] = {}
        self._declined: set[object] = set()  # owners whose client did not accept our stream
        self._tasks: set[asyncio.Task[None]] = set()
        self._replays: dict[tuple[int, int], StreamReplay] = {}  # owner stream → its request
        self._copies = H2Copies()

    async def serve(self) -> None:
        try:
            data = self._prefix
            while True:
                if data:
                    self._from_caller(data)
                self._flush_all()
                data = await self.reader.read(READ_SIZE)
                if not data:
                    if self._replay is not None and self._replay != PREFACE:
                        raise NotHttp2()  # ended before a stream: whatever it was, the app's
                    break
            self._close_all(abort_them=False)
        except NotHttp2:
            log.debug("%s: not HTTP/2, to the app as bytes", self.label)
            self._close_all(abort_them=False, caller=False)
            await self.routes.raw_to_app(self.reader, self.caller.writer,
                                         bytes(self._replay or b""))
        except (h2.exceptions.ProtocolError, ConnectionError) as exc:
            log.debug("%s: ended: %s", self.label, exc)
            self._flush_all()
            self._close_all(abort_them=True)
        except BaseException:
            self._close_all(abort_them=True)
            raise

    # -- caller → destinations ------------------------------------------------------------------

    def _from_caller(self, data: bytes) -> None:
        if self._replay is not None:
            self._replay += data
        try:
            events = self.caller.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            if self._replay is not None:
                raise NotHttp2() from None
            raise
        for event in events:
            stream_id = getattr(event, "stream_id", 0)
            if isinstance(event, h2.events.RequestReceived):
                self._replay = None  # h2 parsed a request: from now on, errors end the connection
                self._opening[stream_id] = []
                task = asyncio.ensure_future(self._open_stream(event))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif stream_id in self._opening:
                self._opening[stream_id].append(event)  # its destination is not known yet
            else:
                self._caller_event(event)

    def _caller_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            self._forward_data(self.caller, event)
            self._copies.data(event.stream_id, event.data or b"", False)
        elif isinstance(event, h2.events.StreamEnded):
            self._forward_end(self.caller, event.stream_id)
            self._copies.data(event.stream_id, b"", True)
        elif isinstance(event, h2.events.StreamReset):
            self._forward_reset(self.caller, event.stream_id, event.error_code)
            self._copies.reset(event.stream_id)
        elif isinstance(event, h2.events.WindowUpdated):
            self._window_opened(self.caller, event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            self._forward_trailers(self.caller, event.stream_id, event.headers)
            self._copies.trailers(event.stream_id, list(event.headers or []))
        elif isinstance(event, h2.events.ConnectionTerminated):
            raise ConnectionError(f"the caller said GOAWAY ({event.error_code!r})")

    async def _open_stream(self, event: h2.events.RequestReceived) -> None:
        """Decide one stream (waiting, if its owner holds it, without holding any other stream)
        and open it on its destination; the caller's events that came meanwhile follow."""
        headers: Headers = [(bytes(n), bytes(v)) for n, v in event.headers or []]
        pseudo = dict(h for h in headers if h[0].startswith(b":"))
        destination = await self.routes.route_parts(pseudo.get(b":method", b""),
                                                    pseudo.get(b":path", b""), headers)
        if destination.key in self._declined:
            destination = self.routes.app
        await self._start(destination, event.stream_id,
                          StreamReplay(headers, event.stream_ended is not None))

    async def _start(self, destination: Destination, caller_id: int,
                     request: StreamReplay) -> None:
        """Open the caller's stream on a destination with what it sent so far."""
        side = await self._upstream(destination)
        queued = self._opening.pop(caller_id, [])
        try:
            if side is None:
                raise h2.exceptions.ProtocolError(f"{destination.label} cannot be reached")
            stream_id = side.conn.get_next_available_stream_id()
            side.conn.send_headers(stream_id, request.headers,
                                   end_stream=request.ended and not request.body)
        except h2.exceptions.ProtocolError as exc:
            log.debug("%s: stream %d refused: %s", self.label, caller_id, exc)
            reset_stream(self.caller, caller_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            for later in queued:
                if isinstance(later, h2.events.DataReceived):
                    acknowledge(self.caller, caller_id, later.flow_controlled_length or 0)
            self._flush_all()
            return
        self._peer[id(self.caller), caller_id] = side, stream_id
        self._peer[id(side), stream_id] = self.caller, caller_id
        if request.body:  # a replay: acknowledged to the caller already
            side.pending.setdefault(stream_id, deque()).append(
                PendingChunk(bytes(request.body), request.ended, self.caller, caller_id, 0))
            self._send_pending(side, stream_id)
        elif request.ended:
            self._ended.add((id(side), stream_id))
        if destination.key != self.routes.app.key:
            self._replays[id(side), stream_id] = request
        elif not request.body:  # what the app serves is copied (not a declined owner's replay)
            pseudo = dict(request.headers)
            mirrors = self.routes.mirror_parts(pseudo.get(b":method", b""),
                                               pseudo.get(b":path", b""), request.headers)
            if mirrors:
                self._flush_all()  # the app's stream first
                await self._copies.start(caller_id, mirrors, request.headers, request.ended)
        try:
            for later in queued:
                self._caller_event(later)
        except (h2.exceptions.ProtocolError, ConnectionError) as exc:
            log.debug("%s: ended: %s", self.label, exc)
            self._close_all(abort_them=True)
        self._flush_all()

    def _keep_for_replay(self, side: H2Side, stream_id: int, data: bytes, end: bool) -> None:
        replay = self._replays.get((id(side), stream_id))
        if replay is not None and not replay.add(data, end):
            del self._replays[id(side), stream_id]

    def _to_app(self, side: H2Side, stream_id: int) -> bool:
        """A stream of an owner that declined goes to the app, if its request was kept."""
        replay = self._replays.pop((id(side), stream_id), None)
        caller = self._peer.pop((id(side), stream_id), None)
        if replay is None or caller is None:
            if caller is not None:
                self._peer[id(side), stream_id] = caller
            return False
        self._peer.pop((id(caller[0]), caller[1]), None)
        self._opening[caller[1]] = []
        task = asyncio.ensure_future(self._start(self.routes.app, caller[1], replay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _upstream(self, destination: Destination) -> H2Side | None:
        """This caller connection's h2 connection to a destination (opened once)."""
        key = destination.key
        if key not in self._connecting:
            self._connecting[key] = asyncio.ensure_future(self._connect(destination))
        return await asyncio.shield(self._connecting[key])

    async def _connect(self, destination: Destination) -> H2Side | None:
        ends = await destination.connect()
        if ends is None:
            del self._connecting[destination.key]  # the next stream tries again
            return None
        reader, writer = ends
        side = H2Side(h2_connection(True), writer, destination.label, reader)
        side.task = asyncio.ensure_future(self._read_upstream(destination.key, side))
        self._upstreams[destination.key] = side
        return side

    # -- destination → caller -------------------------------------------------------------------

    async def _read_upstream(self, key: object, side: H2Side) -> None:
        assert side.reader is not None
        try:
            while data := await side.reader.read(READ_SIZE):
                for event in side.conn.receive_data(data):
                    self._upstream_event(side, event)
                self._flush_all()
            reason = "closed"
        except (h2.exceptions.ProtocolError, ConnectionError) as exc:
            reason = f"failed: {exc}"
        log.debug("%s: %s %s", self.label, side.label, reason)
        if self._upstreams.get(key) is side:
            del self._upstreams[key]
            self._connecting.pop(key, None)
        code = h2.errors.ErrorCodes.CANCEL
        if declined(side.writer):  # the laptop refused: its streams are retried, on the app
            self._declined.add(key)
            code = h2.errors.ErrorCodes.REFUSED_STREAM
        for (side_id, stream_id) in [k for k in self._peer if k[0] == id(side)]:
            if not (key in self._declined and self._to_app(side, stream_id)):
                self._forward_reset(side, stream_id, code)
            self._replays.pop((side_id, stream_id), None)
        abort(side.writer)
        self._flush_all()

    def _upstream_event(self, side: H2Side, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived | h2.events.InformationalResponseReceived):
            other = self._peer.get((id(side), event.stream_id))
            self._replays.pop((id(side), event.stream_id), None)  # answered: no replay
            if other is not None:
                end = getattr(event, "stream_ended", None) is not None
                other[0].conn.send_headers(other[1], list(event.headers or []), end_stream=end)
                if end:
                    self._ended.add((id(other[0]), other[1]))
                    self._forget(side, event.stream_id)
        elif isinstance(event, h2.events.DataReceived):
            self._forward_data(side, event)
        elif isinstance(event, h2.events.TrailersReceived):
            self._forward_trailers(side, event.stream_id, event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            self._forward_end(side, event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self._forward_reset(side, event.stream_id, event.error_code)
        elif isinstance(event, h2.events.WindowUpdated):
            self._window_opened(side, event.stream_id)
        elif isinstance(event, h2.events.ConnectionTerminated):
            raise ConnectionError(f"GOAWAY ({event.error_code!r})")

    # -- both ways ------------------------------------------------------------------------------

    def _forward_data(self, source: H2Side, event: h2.events.DataReceived) -> None:
        target = self._peer.get((id(source), event.stream_id))
        flow = event.flow_controlled_length or 0
        if target is None:
            source.conn.acknowledge_received_data(flow, event.stream_id)
            return
        side, stream_id = target
        end = event.stream_ended is not None
        if source is self.caller:
            self._keep_for_replay(side, stream_id, event.data or b"", end)
        side.pending.setdefault(stream_id, deque()).append(
            PendingChunk(event.data or b"", end, source, event.stream_id, flow))
        self._send_pending(side, stream_id)

    def _forward_trailers(self, source: H2Side, stream_id: int, headers: object) -> None:
        target = self._peer.get((id(source), stream_id))
        if target is not None:
            side, other_id = target
            self._replays.pop((id(side), other_id), None)  # trailers are not kept: no replay
            side.pending.setdefault(other_id, deque()).append(
                PendingChunk(b"", True, source, stream_id, 0))
            self._trailers[side, other_id] = list(headers or [])  # type: ignore[call-overload]
            self._send_pending(side, other_id)

    def _forward_end(self, source: H2Side, stream_id: int) -> None:
        target = self._peer.get((id(source), stream_id))
        if target is not None:
            side, other_id = target
            if source is self.caller:
                self._keep_for_replay(side, other_id, b"", True)
            queue = side.pending.setdefault(other_id, deque())
            if (id(side), other_id) not in self._ended and not (queue and queue[-1].end):
                queue.append(PendingChunk(b"", True, source, stream_id, 0))
            self._send_pending(side, other_id)

    def _forward_reset(self, source: H2Side, stream_id: int, code: object) -> None:
        target = self._peer.pop((id(source), stream_id), None)
        self._ended.discard((id(source), stream_id))
        if target is not None:
            self._peer.pop((id(target[0]), target[1]), None)
            self._ended.discard((id(target[0]), target[1]))
            reset_stream(target[0], target[1], code)

    def _window_opened(self, side: H2Side, stream_id: int) -> None:
        for pending_id in [stream_id] if stream_id else list(side.pending):
            self._send_pending(side, pending_id)

    def _send_pending(self, side: H2Side, stream_id: int) -> None:
        queue = side.pending.get(stream_id)
        conn = side.conn
        while queue:
            chunk = queue[0]
            try:
                window = min(conn.local_flow_control_window(stream_id),
                             conn.max_outbound_frame_size)
            except h2.exceptions.StreamClosedError:
                window = -1
            if window < 0:  # the stream is gone on this side: drop what waits
                for dropped in queue:
                    acknowledge(dropped.source, dropped.source_stream, dropped.flow)
                del side.pending[stream_id]
                return
            if chunk.data and window == 0:
                return
            part, chunk.data = chunk.data[:window], chunk.data[window:]
            last = not chunk.data
            trailers = self._trailers.pop((side, stream_id), None) if last and chunk.end else None
            if trailers is not None:
                if part:
                    conn.send_data(stream_id, part)
                conn.send_headers(stream_id, trailers, end_stream=True)
            elif part or (last and chunk.end):
                conn.send_data(stream_id, part, end_stream=last and chunk.end)
            if last:
                queue.popleft()
                acknowledge(chunk.source, chunk.source_stream, chunk.flow)
                if chunk.end:
                    self._ended.add((id(side), stream_id))
                    self._forget(side, stream_id)
        side.pending.pop(stream_id, None)

    def _forget(self, side: H2Side, stream_id: int) -> None:
        """The stream is done one way; both ends are forgotten once both ways are done."""
        other = self._peer.get((id(side), stream_id))
        if other is None:
            return
        ends = ((id(side), stream_id), (id(other[0]), other[1]))
        if all(end in self._ended for end in ends):
            for end in ends:
                self._peer.pop(end, None)
                self._ended.discard(end)

    def _flush_all(self) -> None:
        self.caller.flush()
        for side in self._upstreams.values():
            side.flush()

    def _close_all(self, *, abort_them: bool, caller: bool = True) -> None:
        self._copies.close()
        for task in self._tasks:
            task.cancel()
        for side in self._upstreams.values():
            if side.task is not None:
                side.task.cancel()
            abort(side.writer) if abort_them else side.writer.close()
        self._upstreams.clear()
        if caller:
            abort(self.caller.writer) if abort_them else self.caller.writer.close()



