"""Per-request routing of one HTTP/1.1 caller connection, with h11 on every side.

Each request is decided on its own when its head has arrived: its head goes to the chosen
destination (the app's keep-alive connection or the owner's tunnel stream, one of each per caller
connection), its body streams there, the answer streams back, and only then is the next request
read, so pipelined requests are answered in order. Copies for mirror owners take the same bytes.
h11 only finds where each message ends: requests go on as the bytes that came in, answers as
the bytes that arrive (parsed after they went on), nothing is serialised again, and each request
cycle parses with a fresh h11 connection. Between requests the quick lane (`agent.lane`) takes
the exchanges of the common shape, without h11 and without this task; where it stops, h11 goes
on.

- ``Expect: 100-continue``: the interim answer passes through like any other.
- An upgrade (or CONNECT) that is accepted turns the rest of the connection into a splice with
  the destination that accepted it.
- Bytes that are not HTTP/1.1 before the first request go to the app as they are. A protocol
  error after that: 400 and close (or a reset in the middle of a body). Nothing is ever sent to
  an owner but a request its filter matched.
- A reused connection that was closed under us before it answered a request without a body is
  retried once on a new one (the keep-alive race every HTTP client handles).
"""

from __future__ import annotations

import asyncio
import functools
import logging

import h11

from innerloop.agent.diverted import Diverted
from innerloop.agent.http1_parts import NotHttp1, RequestRoutes, looks_like_http1
from innerloop.agent.lane import QuickLane
from innerloop.agent.mirror import Copies
from innerloop.agent.upstream import READ_SIZE, Destination, Http1Upstream, UpstreamFailed
from innerloop.core.http1_quick import QuickRequest
from innerloop.tunnel.sockets import abort
from innerloop.tunnel.splice import splice

log = logging.getLogger(__name__)
_HTTP1 = (b"1.0", b"1.1")


class _CallerGone(Exception):
    """The caller reset, closed mid-request or broke HTTP inside a request: abort it all."""


class Http1Router:
    """One caller connection; ``serve`` returns when it is done (every socket closed)."""

    def __init__(self, routes: RequestRoutes, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, label: str, prefix: bytes = b"") -> None:
        self.routes = routes
        self.reader, self.writer = reader, writer
        self.label = label
        self.conn = h11.Connection(h11.SERVER)
        self._upstreams: dict[object, Http1Upstream] = {}
        self._copies = Copies()
        self._raw = bytearray(prefix)  # read from the caller, not yet handed on with an event
        self._first = True  # until the first request: ``_raw`` is all that was read
        self._between = False  # nothing of the next request read yet: ``conn`` is fresh
        self._ahead: tuple[Http1Upstream, bytes, bytes] | None = None
        """A request the quick lane sent before h11 read it, and what the caller has of its
        answer already."""
        self._lane = QuickLane(routes, writer, self._upstreams, self._copies) if isinstance(
            writer.transport.get_protocol(), Diverted) else None
        if prefix:
            self.conn.receive_data(prefix)

    async def serve(self) -> None:
        try:
            if self._raw and not looks_like_http1(bytes(self._raw)):
                raise NotHttp1()
            while (request := await self._next_request()) is not None:
                if not await self._exchange(request):
                    break
            self._close_all(self.writer.close)
        except NotHttp1:
            log.debug("%s: not HTTP/1.1, to the app as bytes", self.label)
            await self.routes.raw_to_app(self.reader, self.writer, bytes(self._raw))
        except (_CallerGone, UpstreamFailed, ConnectionError) as exc:
            log.debug("%s: reset: %s", self.label, exc)
            self._close_all(lambda: abort(self.writer))
        except BaseException:
            self._close_all(lambda: abort(self.writer))
            raise

    # -- the caller side ------------------------------------------------------------------------

    async def _receive(self) -> None:
        data = await self.reader.read(READ_SIZE)
        self._raw += data
        if self._first and data and not looks_like_http1(bytes(self._raw)):
            raise NotHttp1()
        self.conn.receive_data(data)

    def _take(self) -> bytes:
        """The caller's bytes of the events parsed so far (as they came in)."""
        taken = len(self._raw) - len(self.conn.trailing_data[0])
        data = bytes(self._raw[:taken])
        del self._raw[:taken]
        return data

    async def _next_request(self) -> h11.Request | None:
        """The next request head, or None when the caller is done (or was refused)."""
        while self._between and self._lane is not None:  # the quick lane takes what it can
            self._between = False
            stopped = await self._lane.run()
            if stopped is not None and stopped.answered:  # only its copies are left
                await self._copy(stopped.head)
                self._between = True
            elif stopped is not None:  # h11 reads the request the lane sent, and follows it
                self._ahead = stopped.upstream, stopped.head.data, stopped.sent
                self.conn.receive_data(stopped.head.data)
        try:
            while (event := self.conn.next_event()) is h11.NEED_DATA:
                await self._receive()
        except h11.RemoteProtocolError as exc:
            if self._first:
                raise NotHttp1() from None
            self._refuse(exc)
            return None
        if isinstance(event, h11.Request):
            if event.http_version not in _HTTP1:
                if self._first:
                    raise NotHttp1()
                self._refuse(h11.RemoteProtocolError("not HTTP/1.x"))
                return None
            self._first = False
            return event
        return None  # ConnectionClosed: the caller is done

    def _refuse(self, exc: Exception) -> None:
        log.info("%s: bad request after a good one, closing: %s", self.label, exc)
        try:
            for event in (h11.Response(status_code=400, headers=[
                    ("content-length", "0"), ("connection", "close")]), h11.EndOfMessage()):
                self.writer.write(self.conn.send(event) or b"")
        except h11.LocalProtocolError:
            pass

    # -- one exchange ---------------------------------------------------------------------------

    async def _exchange(self, request: h11.Request) -> bool:
        """Route one request and relay its answer; False when the connection is done."""
        upgrade = request.method == b"CONNECT" or any(
            name == b"upgrade" for name, _ in request.headers)
        parts = request.method, request.target, request.headers.raw_items()
        answered = b""  # of the answer, with the caller already
        if self._ahead is not None:  # the quick lane sent it already
            (upstream, head, answered), self._ahead = self._ahead, None
            destination = upstream.destination
            reused = upstream.answered > 0
            upstream.start(request.method, upgrade, b"")
            upstream.received(answered)
        else:
            destination = await self.routes.route_parts(*parts)
            head = self._take()
            upstream = await self._upstream(destination)
            reused = upstream.answered > 0
            upstream.start(request.method, upgrade, head)  # first: the copies never delay it
        mirrors = [] if upgrade else self.routes.mirror_parts(*parts)
        sent, complete = self._buffered_body()
        if sent:
            upstream.write(sent)
        if mirrors and not complete:  # a body still coming: its copies stream along with it
            await self._copies.start(mirrors, request.method, head)
            self._copies.body(sent)
        body = None if complete else self._pump_body_task(upstream)
        while True:
            try:
                switched = await self._pump_answer(upstream, body, bool(answered))
                break
            except _NotAnswered as failed:
                self._drop(upstream, abort_it=True)
                if body is not None:
                    body.cancel()
                    await asyncio.gather(body, return_exceptions=True)
                    if not body.cancelled() and body.exception() is not None:
                        raise body.exception() from None  # type: ignore[misc]
                if complete and upstream.declined:
                    destination = self.routes.app  # the old pipe's fallback: nothing was lost
                elif not (reused and complete):
                    self._copies.abandon()
                    raise failed.cause from None
                log.debug("%s: %s; retrying on %s", self.label, failed.cause, destination.label)
                upstream = await self._upstream(destination)
                reused = False
                upstream.start(request.method, upgrade, head + sent)
        if switched:
            await self._splice(upstream)
            return False
        if mirrors and complete:  # copies of a whole request go once the answer is out
            await self._copies.start(mirrors, request.method, head)
            self._copies.end(sent)
        return self._next_cycle(upstream)

    async def _copy(self, request: QuickRequest) -> None:
        if mirrors := self.routes.mirror_quick(request):
            await self._copies.start(mirrors, request.method, request.data)
            self._copies.end(b"")

    async def _upstream(self, destination: Destination) -> Http1Upstream:
        upstream = self._upstreams.get(destination.key)
        if upstream is not None and upstream.reusable:
            return upstream
        if upstream is not None:
            self._drop(upstream, abort_it=False)
        upstream = await Http1Upstream.open(destination)
        if upstream is None:
            raise UpstreamFailed(f"{destination.label} cannot be reached")
        self._upstreams[destination.key] = upstream
        return upstream

    def _buffered_body(self) -> tuple[bytes, bool]:
        """What the caller already sent of the body, and whether that is all of it (most
        requests are complete: they need no task, and their copies wait for the answer)."""
        while True:
            event = self._buffered_event()
            if event is h11.NEED_DATA:
                return self._take(), False
            if isinstance(event, h11.EndOfMessage):
                return self._take(), True
            if not isinstance(event, h11.Data):
                raise _CallerGone("the caller closed in the middle of a request")

    def _pump_body_task(self, upstream: Http1Upstream) -> asyncio.Task[None]:
        task = asyncio.ensure_future(self._pump_body(upstream))
        task.add_done_callback(functools.partial(_abort_on_failure, upstream))
        return task

    def _buffered_event(self) -> type[h11.NEED_DATA | h11.PAUSED] | h11.Event:
        try:
            return self.conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise _CallerGone(f"bad request body: {exc}") from None

    async def _pump_body(self, upstream: Http1Upstream) -> None:
        """The rest of the request body, caller → destination (and copies)."""
        while True:
            event = self._buffered_event()
            if event is h11.NEED_DATA:
                await self._receive()
            elif isinstance(event, h11.Data):
                data = self._take()
                upstream.write(data)
                self._copies.body(data)
                await upstream.drain()
            elif isinstance(event, h11.EndOfMessage):
                data = self._take()
                upstream.write(data)
                self._copies.end(data)
                return
            else:
                raise _CallerGone("the caller closed in the middle of a request")

    async def _pump_answer(self, upstream: Http1Upstream, body: asyncio.Task[None] | None,
                           wrote: bool) -> bool:
        """The answer, destination → caller: its bytes go on as they arrive, then h11 finds
        where it ends; True if the connection switched protocols. A failing request body aborts
        the upstream, which ends this with UpstreamFailed (`_NotAnswered` while nothing reached
        the caller yet: ``wrote`` False)."""
        waiting_continue = self.conn.they_are_waiting_for_100_continue
        skipped_continue = False
        while True:
            try:
                event = upstream.buffered_event()
                if event is h11.NEED_DATA:
                    data = await upstream.receive()
                    if data:
                        self.writer.write(data)
                        wrote = True
                        if self.writer.transport.get_write_buffer_size():
                            await self.writer.drain()
                    continue
            except UpstreamFailed as exc:
                if wrote:
                    raise
                raise _NotAnswered(exc) from None
            if upstream.switched:
                await self._finish_body(body, False)
                return True
            if isinstance(event, h11.InformationalResponse):
                waiting_continue = False
            elif isinstance(event, h11.Response):
                skipped_continue, waiting_continue = waiting_continue, False
            elif isinstance(event, h11.EndOfMessage):
                await self._finish_body(body, skipped_continue or not upstream.keeps_alive)
                return False

    async def _finish_body(self, body: asyncio.Task[None] | None, stop: bool) -> None:
        """The answer is out; the rest of the request body is still read (so the connection
        stays in step), unless ``stop``: the answer closes the connection anyway, or the
        caller, refused its ``100 Continue``, may never send it."""
        if body is None:
            return
        if not body.done() and stop:
            body.cancel()
        await asyncio.gather(body, return_exceptions=True)
        if not body.cancelled() and body.exception() is not None:
            raise body.exception()  # type: ignore[misc]

    async def _splice(self, upstream: Http1Upstream) -> None:
        del self._upstreams[upstream.destination.key]
        self._close_all(lambda: None)
        caller_rest, _ = self.conn.trailing_data  # (what the upstream sent went on already)
        if caller_rest:
            upstream.writer.write(caller_rest)
        log.debug("%s: switched protocols with %s", self.label, upstream.destination.label)
        await splice(self.reader, self.writer, upstream.reader, upstream.writer)

    def _next_cycle(self, upstream: Http1Upstream) -> bool:
        """A fresh h11 connection for the next request, unless either side ends the connection
        (h11 says so: ``Connection: close``, HTTP/1.0, an answer delimited by closing) or the
        request was not read to its end (a body refused its ``100 Continue``, a declined
        upgrade: closing is always allowed)."""
        keep_alive = upstream.keeps_alive and self.conn.their_state is h11.DONE
        if not upstream.next_cycle():
            self._drop(upstream, abort_it=False)
        if not keep_alive:
            return False
        rest, closed = self.conn.trailing_data
        self.conn = h11.Connection(h11.SERVER)
        self._between = not rest and not closed
        if rest:
            self.conn.receive_data(rest)
        if closed:
            self.conn.receive_data(b"")
        return True

    def _drop(self, upstream: Http1Upstream, *, abort_it: bool) -> None:
        if self._upstreams.get(upstream.destination.key) is upstream:
            del self._upstreams[upstream.destination.key]
        upstream.abort() if abort_it else upstream.close()

    def _close_all(self, close_caller: object) -> None:
        for upstream in self._upstreams.values():
            upstream.close()
        self._upstreams.clear()
        self._copies.close()
        if callable(close_caller):
            close_caller()


class _NotAnswered(Exception):
    """The upstream failed before any of its answer reached the caller."""

    def __init__(self, cause: UpstreamFailed) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _abort_on_failure(upstream: Http1Upstream, body: asyncio.Task[None]) -> None:
    """A request body that broke off must not look complete to its destination."""
    if not body.cancelled() and body.exception() is not None:
        upstream.abort()
