"""Reads one routed stream's bytes for the request log (`core.request_log`), both ways.

Sans-I/O and passive: the tunnel's relay hands each chunk over as it moves it (the
`tunnel.relay.StreamTap` of the stream), nothing is buffered beyond what h11 needs for a
head, and a parse failure only changes what the log says, never the stream.

HTTP/1.1 is read with two h11 connections per request: a server-side one over the caller's
bytes (requests), a client-side one over the program's bytes (answers) that is told the request
it answers (so HEAD and 1xx are framed right). Each request/answer cycle starts fresh parsers
with the bytes left over (`trailing_data`), so keep-alive and pipelining give one record each.
Bytes that are not HTTP/1.1 (h2, a database protocol) make one TCP record for the connection;
after a 101 (WebSocket) the record stays open and counts the bytes until the connection ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import Enum

import h11

from innerloop.core.request_log import FlowKind, FlowOutcome, RequestLog

log = logging.getLogger(__name__)
Defer = Callable[[Callable[[], None]], object]
"""Runs a callback soon (`loop.call_soon`)."""
MAX_EARLY = 64 * 1024
"""The program's bytes kept before the request they answer is read; more is not HTTP/1.1."""
H2_PREFACE = b"PRI * HTTP/2.0"
_ECHOED = {b"connection", b"upgrade"}


class _Side(Enum):
    CALLER = "caller"
    PROGRAM = "program"
    END = "end"
    RESET = "reset"


class _Mode(Enum):
    SNIFF = "sniff"
    """No request yet: is this HTTP/1.1 at all?"""
    HTTP = "http"
    OPAQUE = "opaque"
    """Not (or no longer) HTTP/1.1: bytes are counted into `_opaque`."""


class HttpTap:
    def __init__(self, log: RequestLog, intercept: str, replica: str, peer: str,
                 clock: Callable[[], float], defer: Defer | None = None) -> None:
        self._log = log
        self._who = (intercept, replica, peer)
        self._clock = clock
        self._defer = defer
        self._queue: list[tuple[_Side, bytes, float]] = []
        self._now = 0.0
        self._mode = _Mode.SNIFF
        self._requests = h11.Connection(h11.SERVER)
        self._answers: h11.Connection | None = None
        self._early = b""
        """The program's bytes before the request they answer was read."""
        self._record: int | None = None
        self._request_done = False
        self._answer_done = False
        self._opaque: int | None = None
        self._seen = b""

    # -- the relay's calls (tunnel.relay.StreamTap) ----------------------------------------

    def from_tunnel(self, data: bytes) -> None:
        """The caller's bytes, on their way to the local program."""
        self._add(_Side.CALLER, data)

    def to_tunnel(self, data: bytes) -> None:
        """The local program's bytes, on their way back to the caller."""
        self._add(_Side.PROGRAM, data)

    def ended(self, reset: bool) -> None:
        self._add(_Side.RESET if reset else _Side.END, b"")

    def _add(self, side: _Side, data: bytes) -> None:
        """Timed now, read now or (with `defer`) once the relay's own work is done: parsing
        (~0.1-0.3 ms a request) is then never between a byte and its socket."""
        self._queue.append((side, data, self._clock()))
        if self._defer is None:
            self._drain()
        elif len(self._queue) == 1:
            self._defer(self._drain)

    def _drain(self) -> None:
        queue, self._queue = self._queue, []
        for side, data, now in queue:
            self._now = now
            try:
                if side is _Side.CALLER:
                    self._from_caller(data)
                elif side is _Side.PROGRAM:
                    self._from_program(data)
                else:
                    self._end(reset=side is _Side.RESET)
            except Exception:  # the log must never break the stream it watches
                log.exception("request log: cannot read a stream; counting its bytes only")
                self._mode = _Mode.OPAQUE

    def _from_caller(self, data: bytes) -> None:
        if not data:
            return
        if self._mode is _Mode.OPAQUE:
            self._count(request=len(data))
            return
        if self._mode is _Mode.SNIFF and not self._seen:
            self._seen = data[:len(H2_PREFACE)]
        self._requests.receive_data(data)
        self._read_requests()

    def _from_program(self, data: bytes) -> None:
        if not data:
            return
        if self._mode is _Mode.OPAQUE:
            self._count(response=len(data))
        elif self._answers is None:
            if self._mode is _Mode.SNIFF and not self._seen:
                self._go_opaque(response=len(data))  # the program spoke first: not HTTP
            elif len(self._early) + len(data) > MAX_EARLY:
                self._not_http(response=len(self._early) + len(data))
            else:
                self._early += data
        else:
            self._answers.receive_data(data)
            self._read_answers()

    def _end(self, reset: bool) -> None:
        now = self._now
        if self._answers is not None and not reset and self._record is not None \
                and self._mode is _Mode.HTTP:
            try:
                self._answers.receive_data(b"")  # an answer framed by the close ends here
                self._read_answers()
            except Exception:  # as in from_tunnel
                log.exception("request log: cannot read the end of an answer")
        if self._record is not None:
            self._log.end(self._record, now, FlowOutcome.DONE if self._answer_done else FlowOutcome.RESET)
            self._record = None
        if self._opaque is not None:
            self._log.end(self._opaque, now, FlowOutcome.RESET if reset else FlowOutcome.DONE)
        elif self._mode is _Mode.SNIFF and self._requests.trailing_data[0]:
            self._go_opaque(request=len(self._requests.trailing_data[0]))
            self._end(reset)

    # -- requests -----------------------------------------------------------------------

    def _read_requests(self) -> None:
        while self._mode is not _Mode.OPAQUE:
            try:
                event = self._requests.next_event()
            except h11.RemoteProtocolError:
                self._not_http(request=len(self._requests.trailing_data[0]))
                return
            if event is h11.NEED_DATA or event is h11.PAUSED \
                    or isinstance(event, h11.ConnectionClosed):
                return
            if isinstance(event, h11.Request):
                self._begin(event)
            elif isinstance(event, h11.Data) and self._record is not None:
                self._log.add_bytes(self._record, request=len(event.data))
            elif isinstance(event, h11.EndOfMessage):
                self._request_done = True
                self._next_cycle()

    def _begin(self, request: h11.Request) -> None:
        if request.method == b"PRI" and request.target == b"*":  # h11 reads h2's preface
            self._seen = H2_PREFACE
            self._go_opaque(request=len(self._requests.trailing_data[0]))
            return
        self._mode = _Mode.HTTP
        method = request.method.decode("ascii", "replace")
        target = request.target.decode("ascii", "replace")
        self._record = self._log.begin(*self._who, self._now, FlowKind.HTTP, method, target)
        self._request_done = self._answer_done = False
        answers = h11.Connection(h11.CLIENT)
        # What frames the answer: the method (HEAD, CONNECT) and the upgrade headers; h11 wants
        # a Host. The rest would only cost validation.
        headers = [(b"host", b"-"), *((k, v) for k, v in request.headers if k in _ECHOED)]
        answers.send(h11.Request(method=request.method, target=request.target, headers=headers))
        answers.send(h11.EndOfMessage())
        self._answers = answers
        if self._early:
            early, self._early = self._early, b""
            answers.receive_data(early)
            self._read_answers()

    # -- answers ------------------------------------------------------------------------

    def _read_answers(self) -> None:
        answers = self._answers
        while answers is not None and answers is self._answers and self._mode is _Mode.HTTP:
            try:
                event = answers.next_event()
            except h11.RemoteProtocolError:
                self._not_http(response=len(answers.trailing_data[0]))
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                if answers.their_state is h11.SWITCHED_PROTOCOL:
                    self._upgraded(answers)
                return
            record = self._record
            if record is None or isinstance(event, h11.ConnectionClosed):
                return
            if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
                self._log.answer(record, 101)
            elif isinstance(event, h11.Response):
                self._log.answer(record, event.status_code)
            elif isinstance(event, h11.Data):
                self._log.add_bytes(record, response=len(event.data))
            elif isinstance(event, h11.EndOfMessage):
                self._answer_done = True
                self._next_cycle()

    def _upgraded(self, answers: h11.Connection) -> None:
        """101: the rest of the connection is the new protocol's, counted into this record."""
        record = self._record
        self._mode, self._opaque, self._record = _Mode.OPAQUE, record, None
        if record is not None:
            self._log.note(record, "upgraded")
            self._count(request=len(self._requests.trailing_data[0]),
                        response=len(answers.trailing_data[0]))

    def _next_cycle(self) -> None:
        """Both the request and its answer are whole: the record is done; read the next."""
        if not (self._request_done and self._answer_done) or self._answers is None:
            return
        if self._record is not None:
            self._log.end(self._record, self._now)
            self._record = None
        left_requests = self._requests.trailing_data[0]
        self._early = self._answers.trailing_data[0]
        self._requests, self._answers = h11.Connection(h11.SERVER), None
        if left_requests:  # (b"" would say the caller closed)
            self._requests.receive_data(left_requests)
            self._read_requests()

    # -- not HTTP/1.1 -------------------------------------------------------------------

    def _not_http(self, request: int = 0, response: int = 0) -> None:
        """From here on, bytes only: the open request (if any) says so."""
        if self._record is not None:
            self._log.note(self._record, "not HTTP/1.1 after this")
            self._log.end(self._record, self._now, FlowOutcome.RESET)
            self._record = None
        self._go_opaque(request, response)

    def _go_opaque(self, request: int = 0, response: int = 0) -> None:
        note = "h2" if self._seen.startswith(H2_PREFACE) else ""
        self._mode = _Mode.OPAQUE
        self._opaque = self._log.begin(*self._who, self._now, FlowKind.TCP, note=note)
        self._count(request, response)

    def _count(self, request: int = 0, response: int = 0) -> None:
        if self._opaque is not None and (request or response):
            self._log.add_bytes(self._opaque, request, response)


def tap_factory(log: RequestLog, intercept: str, clock: Callable[[], float],
                defer: Defer | None = None) -> Callable[[str, str], HttpTap]:
    """`(replica, peer) → tap` for one intercept's streams."""
    return lambda replica, peer: HttpTap(log, intercept, replica, peer, clock, defer)
