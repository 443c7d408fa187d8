"""Mirror mode: a copy of each matching request goes to the mirror owner; its answer is dropped.

The app's path never waits on a copy: a whole request's copy goes once the app's answer is out
(`Http1Router`), and from the quick lane a moment later (`COPY_DELAY`), a streaming body's along
with it; copies are written without ``drain``. A copy
is dropped (and counted) instead when its owner is paused, when its stream cannot be opened, or
when the stream has not taken the previous bytes yet (no tunnel credit: the laptop is slow or
stopped at a breakpoint); a copy already under way when that happens is cut off by resetting its
stream, and the next copy opens a new one. So a slow mirror costs at most one stream window of
memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import h11

from innerloop.agent.diverted import Diverted
from innerloop.agent.owner_stream import Ends, congested
from innerloop.agent.upstream import END, Destination, stand_in
from innerloop.core.http1_quick import MAX_HEAD, quick_answer
from innerloop.tunnel.sockets import abort

log = logging.getLogger(__name__)
COPY_DELAY = 0.001
"""How long the quick lane's copies wait before they go, together: the caller's answer (and its
process) gets the CPU first, where a copy's trip (the agent's send, the laptop's side, on a
node its tunnel's port-forward) would compete with it; copies close together take one frame."""
MAX_UNANSWERED = 16
"""Copies a mirror owner may leave unanswered on one caller connection before the next is
dropped: a laptop stopped at a breakpoint costs 16 copies, not the TCP buffers' megabytes."""


@dataclass
class MirrorCounters:
    """What one mirror claim got: copies sent whole, copies dropped (paused, slow, gone)."""

    copied: int = 0
    dropped: int = 0


class MirrorTarget(Protocol):
    """A mirror claim whose filter matched a request."""

    @property
    def destination(self) -> Destination: ...

    @property
    def counters(self) -> MirrorCounters: ...

    @property
    def paused(self) -> bool: ...


class _CopyStream:
    """One caller connection's stream of copies to one mirror owner. Its answers are read from
    the stream's callback (`Diverted` sink: no task), counted where their framing is simple
    (`quick_answer`), else parsed by h11, and dropped: only to know how many copies it has not
    answered yet."""

    def __init__(self, ends: Ends) -> None:
        self.reader, self.writer = ends
        self._unanswered: deque[bytes] = deque()  # the methods of the copies sent
        self._start = b""  # the start of an answer whose head is not all here yet
        self._left = 0  # of the answer being counted
        self._conn: h11.Connection | None = None  # h11 follows, once an answer was not quick
        self._ended = False
        self._queued: list[tuple[bytes, MirrorCounters]] = []  # to go at the next `flush`
        protocol = self.writer.transport.get_protocol()
        assert isinstance(protocol, Diverted)
        protocol.sink = self

    @property
    def usable(self) -> bool:
        return not self._ended and not self.writer.is_closing()

    @property
    def busy(self) -> bool:
        """Behind: too many copies unanswered, or the tunnel has not taken our bytes."""
        return len(self._unanswered) >= MAX_UNANSWERED or congested(self.writer)

    def sent(self, method: bytes) -> None:
        self._unanswered.append(method)
        if self._conn is not None:
            self._follow()

    def queue(self, method: bytes, head: bytes, counters: MirrorCounters) -> None:
        """A whole request's copy, to go at the next `flush` (counted copied meanwhile)."""
        self._queued.append((head, counters))
        self.sent(method)
        counters.copied += 1

    def flush(self) -> None:
        """Send what is queued, in one write; copies the stream can no longer take are
        counted dropped instead."""
        if not self._queued:
            return
        queued, self._queued = self._queued, []
        if self.usable:
            self.writer.write(b"".join(head for head, _ in queued))
            return
        for _, counters in queued:
            counters.copied -= 1
            counters.dropped += 1

    def on_data(self, source: Diverted, data: bytes) -> None:
        if self._ended:
            return
        if self._conn is not None:
            self._conn.receive_data(data)
            return self._follow()
        data = self._start + data
        self._start = b""
        while data and self._unanswered:
            if not self._left:
                length = quick_answer(data, self._unanswered[0])
                if length is None and len(data) < MAX_HEAD and b"\r\n\r\n" not in data:
                    self._start = data  # the rest of its head is on its way
                    return
                if length is None:  # h11 from this answer on
                    self._conn = h11.Connection(h11.CLIENT)
                    self._conn.receive_data(data)
                    return self._follow()
                self._left = length
            taken = min(self._left, len(data))
            data, self._left = data[taken:], self._left - taken
            if not self._left:
                self._unanswered.popleft()
        if data:  # an answer to nothing
            self.close()

    def on_end(self, source: Diverted, exc: Exception | None, lost: bool) -> None:
        self.close()

    def on_writable(self, source: Diverted, writable: bool) -> None:
        pass  # `busy` reads it

    def _follow(self) -> None:
        conn = self._conn
        assert conn is not None
        try:
            while self._unanswered:
                if conn.our_state is h11.IDLE:  # h11 reads an answer to a request it sent:
                    conn.send(stand_in(self._unanswered[0], False))  # the method matters
                    conn.send(END)
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    return
                if isinstance(event, h11.ConnectionClosed):
                    return self.close()
                if isinstance(event, h11.EndOfMessage):
                    self._unanswered.popleft()
                    if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                        return self.close()
                    conn.start_next_cycle()
        except h11.ProtocolError:
            self.close()

    def close(self) -> None:
        self._ended = True
        self.writer.close()

    def cut(self) -> None:
        self._ended = True
        abort(self.writer)


class Copies:
    """The copies one caller connection sends, one stream per mirror owner."""

    def __init__(self) -> None:
        self._streams: dict[object, _CopyStream] = {}
        self._current: list[tuple[MirrorTarget, _CopyStream]] = []
        self._flushing: asyncio.TimerHandle | None = None

    async def start(self, targets: list[MirrorTarget], method: bytes, head: bytes) -> None:
        """Begin copying a request (its head as sent to its destination) to these targets."""
        self._current = []
        for target in targets:
            stream = await self._stream_for(target)
            if stream is None:
                target.counters.dropped += 1
                continue
            stream.flush()  # queued copies first: the stream carries whole requests in order
            stream.writer.write(head)
            stream.sent(method)
            self._current.append((target, stream))

    def copy_now(self, targets: list[MirrorTarget], method: bytes, head: bytes) -> bool:
        """`start` and `end` of a request without a body, without waiting: False (nothing
        done) when a target's stream must be opened first. The copies go `COPY_DELAY` later."""
        streams = []
        for target in targets:
            stream = None if target.paused else self._streams.get(target.destination.key)
            if stream is None and not target.paused or stream is not None and not stream.usable:
                return False
            streams.append(stream)
        for target, stream in zip(targets, streams):
            if stream is None or stream.busy:
                target.counters.dropped += 1
            else:
                stream.queue(method, head, target.counters)
                if self._flushing is None:
                    self._flushing = asyncio.get_running_loop().call_later(COPY_DELAY,
                                                                           self.flush)
        return True

    def flush(self) -> None:
        """Send the queued copies now."""
        if self._flushing is not None:
            self._flushing.cancel()
            self._flushing = None
        for stream in self._streams.values():
            stream.flush()

    def body(self, data: bytes) -> None:
        """More of the request, as sent to its destination (framing included)."""
        if not data or not self._current:
            return
        kept = []
        for target, stream in self._current:
            if not stream.usable or congested(stream.writer):
                self._forget(target, stream)
                target.counters.dropped += 1
            else:
                stream.writer.write(data)
                kept.append((target, stream))
        self._current = kept

    def end(self, data: bytes) -> None:
        """The last bytes of the request: every copy still going counts as copied."""
        self.body(data)
        for target, _ in self._current:
            target.counters.copied += 1
        self._current = []

    def abandon(self) -> None:
        """The request broke off: cut the copies under way (their owners would wait forever)."""
        for target, stream in self._current:
            self._forget(target, stream)
            target.counters.dropped += 1
        self._current = []

    def close(self) -> None:
        self.abandon()
        self.flush()
        for stream in self._streams.values():
            stream.close()
        self._streams.clear()

    async def _stream_for(self, target: MirrorTarget) -> _CopyStream | None:
        if target.paused:
            return None
        key = target.destination.key
        stream = self._streams.get(key)
        if stream is not None and stream.usable:
            return None if stream.busy else stream
        if stream is not None:
            stream.flush()  # its queued copies are dropped (and counted so)
        ends = await target.destination.connect()
        if ends is None:
            return None
        stream = self._streams[key] = _CopyStream(ends)
        return stream

    def _forget(self, target: MirrorTarget, stream: _CopyStream) -> None:
        stream.cut()
        if self._streams.get(target.destination.key) is stream:
            del self._streams[target.destination.key]
