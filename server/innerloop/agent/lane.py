"""The quick lane: the exchanges of an HTTP/1.1 caller connection relayed from callback to
callback, between requests, while they are quick.

The router reads in a task: each read costs an event-loop turn, as much as a whole quick
exchange, and a whole-connection relay pays none. The lane takes the connection's bytes
(`agent.diverted`): a quick request (`core.http1_quick`) decided at once goes to an upstream
the connection has, its answer, if quick, back by counting its bytes, its copies to open copy
streams. At anything else it stops, gives back the bytes it did not use, and the router goes
on from there.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from innerloop.agent.diverted import Diverted
from innerloop.agent.http1_parts import RequestRoutes
from innerloop.agent.mirror import Copies
from innerloop.agent.upstream import Http1Upstream, UpstreamFailed
from innerloop.core.http1_quick import QuickRequest, quick_answer, quick_request


@dataclass(slots=True)
class Stopped:
    """The lane stopped in an exchange: the request went out on ``upstream`` (its answer waits
    in the reader, after ``sent``, its start the caller has already), or (``answered``) only
    its copies are left."""

    head: QuickRequest
    upstream: Http1Upstream
    answered: bool = False
    sent: bytes = b""


class QuickLane:
    def __init__(self, routes: RequestRoutes, writer: asyncio.StreamWriter,
                 upstreams: dict[object, Http1Upstream], copies: Copies) -> None:
        protocol = _source(writer)
        assert protocol is not None
        self._routes = routes
        self._to_caller = writer.transport  # written to at once, as its StreamWriter would
        self._caller = protocol
        self._upstreams = upstreams
        self._copies = copies
        self._done: asyncio.Future[Stopped | None] | None = None
        self._stopped = True  # no run, or its result is set
        self._sources: dict[Diverted, bytearray] = {}  # diverted now, with what they held
        self._ready: dict[object, tuple[Http1Upstream, Diverted]] = {}
        """Upstreams this run found reusable and diverted, by destination key: the next
        exchange to the same place skips those checks (an upstream that sends or ends between
        exchanges leaves it)."""
        self._paused: set[asyncio.Transport] = set()  # reading paused by the lane
        self._exchange: Stopped | None = None
        self._upstream: Diverted | None = None  # the exchange's upstream
        self._left = -1  # of the answer still to come; -1: nothing of it yet
        self._caller_ended = False

    async def run(self) -> Stopped | None:
        """None: the next bytes wait in the caller's reader. Raises UpstreamFailed when an
        answer broke off after part of it went out."""
        self._done = asyncio.get_running_loop().create_future()
        self._exchange, self._caller_ended = None, False
        if not self._divert(self._caller):
            return None  # its reader holds bytes (or the end) already
        self._stopped = False
        try:
            return await self._done
        finally:
            self._stopped = True
            self._ready.clear()
            for transport in self._paused:
                transport.resume_reading()
            self._paused.clear()
            for source, held in self._sources.items():
                source.restore(bytes(held))
            self._sources.clear()

    # -- Sink ---------------------------------------------------------------------------------

    def on_data(self, source: Diverted, data: bytes) -> None:
        exchange = self._exchange
        if self._stopped:
            self._hold(source, data)
        elif source is self._caller:
            if exchange is None:
                self._request(data)
            else:  # the next request, before this answer is out: it waits its turn
                self._hold(source, data)
                self._pause(source)
        elif exchange is not None and source is self._upstream:
            self._answer(exchange, data)
        else:  # an idle upstream spoke: the router sees it
            self._ready.clear()
            self._hold(source, data)

    def on_end(self, source: Diverted, exc: Exception | None, lost: bool) -> None:
        exchange = self._exchange
        if source is self._caller:
            self._caller_ended = True
            if exchange is None or lost:
                self._stop(None)
        elif exchange is not None and source is self._upstream:
            if self._left < 0:  # nothing of the answer yet: the router may retry
                self._stop(exchange)
            else:
                self._fail(UpstreamFailed(f"{exchange.upstream.destination.label} ended the "
                                          "connection in the middle of an answer"))
        else:  # an idle upstream ended: not to be used again
            self._ready.clear()

    def on_writable(self, source: Diverted, writable: bool) -> None:
        upstream = self._upstream
        if source is self._caller and self._exchange is not None and upstream is not None:
            if writable:
                self._resume(upstream)
            else:
                self._pause(upstream)

    # -- the exchange -------------------------------------------------------------------------

    def _request(self, data: bytes) -> None:
        quick = quick_request(data)
        if quick is None:
            return self._stop(None, self._caller, data)
        destination = self._routes.decide_quick(quick)
        ready = None if destination is None else (
            self._ready.get(destination.key) or self._make_ready(destination.key))
        if ready is None:
            return self._stop(None, self._caller, data)  # the router waits, or connects
        upstream, source = ready
        transport = source.transport
        if transport is None or transport.is_closing():
            return self._stop(None, self._caller, data)
        self._exchange = Stopped(quick, upstream)
        self._upstream, self._left = source, -1
        transport.write(data)

    def _make_ready(self, key: object) -> tuple[Http1Upstream, Diverted] | None:
        """The connection's upstream for ``key``, if it is reusable, diverted from now on."""
        upstream = self._upstreams.get(key)
        source = None if upstream is None or not upstream.reusable else _source(upstream.writer)
        if upstream is None or source is None or not self._divert(source):
            return None
        ready = self._ready[key] = upstream, source
        return ready

    def _answer(self, exchange: Stopped, data: bytes) -> None:
        if self._left < 0:  # its first bytes go on before they are read, as h11's would
            self._to_caller.write(data)
            length = quick_answer(data, exchange.head.method)
            if length is None or len(data) > length:  # h11 reads them, and follows the rest
                return self._stop(dataclasses.replace(exchange, sent=data))
            self._left = length - len(data)
        else:
            if len(data) > self._left:  # more than the answer: out of step
                data = data[:self._left]
                exchange.upstream.close()
                self._ready.clear()
            self._to_caller.write(data)
            self._left -= len(data)
        if self._left:
            return
        exchange.upstream.answered += 1
        self._exchange = None
        request = exchange.head
        mirrors = self._routes.mirror_quick(request)
        if mirrors and not self._copies.copy_now(mirrors, request.method, request.data):
            return self._stop(dataclasses.replace(exchange, answered=True))
        if self._paused:
            self._resume(self._caller)
        if self._caller_ended:
            return self._stop(None)
        if (held := self._sources.get(self._caller)):
            data = bytes(held)
            held.clear()
            self._request(data)

    # -- plumbing -----------------------------------------------------------------------------

    def _divert(self, source: Diverted | None) -> bool:
        """Take its bytes from now on (False: it ended, or holds bytes)."""
        if source is None:
            return False
        if source in self._sources:
            return not source.ended and not self._sources[source]
        if source.sink is not None or source.ended:
            return False
        source.sink = self
        self._sources[source] = bytearray()
        return True

    def _hold(self, source: Diverted | None, data: bytes) -> None:
        if source is not None and data:
            self._sources.setdefault(source, bytearray()).extend(data)

    def _pause(self, source: Diverted) -> None:
        transport = source.transport
        if transport is not None and transport not in self._paused:
            self._paused.add(transport)
            transport.pause_reading()

    def _resume(self, source: Diverted) -> None:
        transport = source.transport
        if transport is not None and transport in self._paused:
            self._paused.discard(transport)
            transport.resume_reading()

    def _stop(self, result: Stopped | None, source: Diverted | None = None,
              data: bytes = b"") -> None:
        if source is not None:
            self._hold(source, data)
        self._stopped = True
        if self._done is not None and not self._done.done():  # (cancelled: the run ends)
            self._done.set_result(result)

    def _fail(self, exc: Exception) -> None:
        self._stopped = True
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)


def _source(writer: asyncio.StreamWriter) -> Diverted | None:
    """The connection's `Diverted` protocol, if it has one."""
    protocol = writer.transport.get_protocol()
    return protocol if isinstance(protocol, Diverted) else None
