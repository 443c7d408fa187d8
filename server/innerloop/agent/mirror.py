"""Mirror mode: a copy of each matching request goes to the mirror owner; its answer is dropped.

The app's path never waits on a copy: copies are written without ``drain``. A copy is dropped
(and counted) instead when its owner is paused, when its stream cannot be opened, or when the
stream has not taken the previous bytes yet (no tunnel credit: the laptop is slow or stopped at
a breakpoint); a copy already under way when that happens is cut off by resetting its stream,
and the next copy opens a new one. So a slow mirror costs at most one pipe's worth of memory.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from innerloop.agent.pipe import Ends, congested
from innerloop.agent.upstream import READ_SIZE, Destination
from innerloop.tunnel.sockets import abort

log = logging.getLogger(__name__)


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
    """One caller connection's stream of copies to one mirror owner."""

    def __init__(self, ends: Ends) -> None:
        self.reader, self.writer = ends
        self._discard = asyncio.ensure_future(self._discard_answers())

    @property
    def usable(self) -> bool:
        return not self._discard.done() and not self.writer.is_closing()

    async def _discard_answers(self) -> None:
        try:
            while await self.reader.read(READ_SIZE):
                pass
        except ConnectionError:
            pass

    def close(self) -> None:
        self.writer.close()

    def cut(self) -> None:
        abort(self.writer)


class Copies:
    """The copies one caller connection sends, one stream per mirror owner."""

    def __init__(self) -> None:
        self._streams: dict[object, _CopyStream] = {}
        self._current: list[tuple[MirrorTarget, _CopyStream]] = []

    async def start(self, targets: list[MirrorTarget], head: bytes) -> None:
        """Begin copying a request (its head as sent to its destination) to these targets."""
        self._current = []
        for target in targets:
            stream = await self._stream_for(target)
            if stream is None:
                target.counters.dropped += 1
                continue
            stream.writer.write(head)
            self._current.append((target, stream))

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
        for stream in self._streams.values():
            stream.close()
        self._streams.clear()

    async def _stream_for(self, target: MirrorTarget) -> _CopyStream | None:
        if target.paused:
            return None
        key = target.destination.key
        stream = self._streams.get(key)
        if stream is not None and stream.usable and not congested(stream.writer):
            return stream
        if stream is not None:
            if stream.usable:
                return None  # slow: the previous copies are still on their way
            del self._streams[key]
        ends = await target.destination.connect()
        if ends is None:
            return None
        stream = self._streams[key] = _CopyStream(ends)
        return stream

    def _forget(self, target: MirrorTarget, stream: _CopyStream) -> None:
        stream.cut()
        if self._streams.get(target.destination.key) is stream:
            del self._streams[target.destination.key]
