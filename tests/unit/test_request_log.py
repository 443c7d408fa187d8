"""The request log (core.request_log) and the stream reader that feeds it (intercepts.http_tap):
what the editor's view shows of each request routed to this machine."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from innerloop.core.request_log import FlowKind, FlowOutcome, RequestLog
from innerloop.intercepts.http_tap import HttpTap

INTERCEPT = "ns/echo"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def tap(log: RequestLog, clock: Clock) -> HttpTap:
    return HttpTap(log, INTERCEPT, "echo-1", "198.18.1.7:40000", clock)


def summary(log: RequestLog) -> list[tuple[object, ...]]:
    return [(r.kind.value, r.method, r.path, r.status, r.request_bytes, r.response_bytes,
             r.outcome.value, r.held) for r in log.records()]


# -- the log itself -------------------------------------------------------------------------


def test_changes_are_pushed_once_per_burst_and_taken_in_order() -> None:
    log = RequestLog()
    pushes: list[int] = []
    log.on_change = lambda: pushes.append(1)
    a = log.begin(INTERCEPT, "r", "p", 1.0, FlowKind.HTTP, "GET", "/a")
    b = log.begin(INTERCEPT, "r", "p", 2.0, FlowKind.HTTP, "GET", "/b")
    log.answer(a, 200)
    assert len(pushes) == 1
    assert [r.id for r in log.take_changes()] == [a, b]
    assert log.take_changes() == []
    log.end(b, 2.5)
    assert len(pushes) == 2
    [changed] = log.take_changes()
    assert changed.as_json()["duration"] == 0.5 and changed.outcome is FlowOutcome.DONE


def test_the_oldest_records_go_beyond_capacity() -> None:
    log = RequestLog(capacity=3)
    ids = [log.begin(INTERCEPT, "r", "p", float(i), FlowKind.TCP) for i in range(5)]
    assert [r.id for r in log.records()] == ids[2:]
    assert [r.id for r in log.take_changes()] == ids[2:]
    log.add_bytes(ids[0], 10)  # evicted: ignored
    assert log.take_changes() == []


def test_open_records_and_new_ones_are_held_while_paused_only() -> None:
    log = RequestLog()
    done = log.begin(INTERCEPT, "r", "p", 1.0, FlowKind.HTTP, "GET", "/done")
    log.end(done, 1.1)
    at_breakpoint = log.begin(INTERCEPT, "r", "p", 2.0, FlowKind.HTTP, "GET", "/stop")
    other = log.begin("ns/other", "r", "p", 2.0, FlowKind.HTTP, "GET", "/x")
    log.set_paused(INTERCEPT, True)
    behind = log.begin(INTERCEPT, "r", "p", 3.0, FlowKind.HTTP, "GET", "/behind")
    log.set_paused(INTERCEPT, False)
    after = log.begin(INTERCEPT, "r", "p", 4.0, FlowKind.HTTP, "GET", "/after")
    held = {r.id: r.held for r in log.records()}
    assert held == {done: False, at_breakpoint: True, other: False, behind: True, after: False}
    log.end(at_breakpoint, 9.0)
    assert log.get(at_breakpoint) is not None and log.get(at_breakpoint).held  # type: ignore[union-attr]


# -- HTTP/1.1 read from the stream's bytes -----------------------------------------------------


def test_one_request_and_its_answer(clock: Clock) -> None:
    log = RequestLog()
    t = tap(log, clock)
    t.from_tunnel(b"POST /orders?id=1 HTTP/1.1\r\nHost: echo\r\nContent-Length: 4\r\n\r\nab")
    [r] = log.records()
    assert (r.method, r.path, r.status, r.outcome) == ("POST", "/orders?id=1", None, FlowOutcome.OPEN)
    t.from_tunnel(b"cd")
    clock.now += 0.25
    t.to_tunnel(b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhel")
    assert r.status == 201 and r.outcome is FlowOutcome.OPEN
    t.to_tunnel(b"lo")
    assert summary(log) == [("http", "POST", "/orders?id=1", 201, 4, 5, "done", False)]
    assert r.duration == pytest.approx(0.25)
    assert (r.replica, r.peer) == ("echo-1", "198.18.1.7:40000")
    t.ended(reset=False)
    assert len(log.records()) == 1


def test_keep_alive_and_pipelined_requests_are_one_record_each(clock: Clock) -> None:
    log = RequestLog()
    t = tap(log, clock)
    t.from_tunnel(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
    # The answer to HEAD has a length but no body: h11 knows, since it was told the method.
    t.to_tunnel(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"
                b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nnot\r\n0\r\n\r\n")
    t.ended(reset=False)
    assert summary(log) == [
        ("http", "GET", "/a", 200, 0, 2, "done", False),
        ("http", "HEAD", "/b", 200, 0, 0, "done", False),
        ("http", "GET", "/c", 404, 0, 3, "done", False),
    ]


def test_an_answer_split_anywhere_before_its_request_was_read(clock: Clock) -> None:
    raw_request = b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
    raw_answer = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    for cut in range(1, len(raw_request)):
        log = RequestLog()
        t = tap(log, clock)
        t.from_tunnel(raw_request[:cut])
        t.to_tunnel(raw_answer[:5])
        t.from_tunnel(raw_request[cut:])
        t.to_tunnel(raw_answer[5:])
        assert summary(log) == [("http", "GET", "/slow", 200, 0, 3, "done", False)], cut


def test_an_answer_framed_by_the_close(clock: Clock) -> None:
    log = RequestLog()
    t = tap(log, clock)
    t.from_tunnel(b"GET / HTTP/1.0\r\n\r\n")
    t.to_tunnel(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")
    assert summary(log)[0][-2] == "open"
    t.ended(reset=False)
    assert summary(log) == [("http", "GET", "/", 200, 0, 13, "done", False)]


def test_a_request_the_program_never_answered_is_reset(clock: Clock) -> None:
    log = RequestLog()
    t = tap(log, clock)
    t.from_tunnel(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
    clock.now += 1
    t.ended(reset=True)
    [r] = log.records()
    assert (r.status, r.outcome, r.duration) == (None, FlowOutcome.RESET, 1.0)


def test_a_request_paused_at_a_breakpoint_is_held(clock: Clock) -> None:
    log = RequestLog()
    t = tap(log, clock)
    t.from_tunnel(b"GET /stop HTTP/1.1\r\nHost: x\r\n\r\n")
    log.set_paused(INTERCEPT, True)
    clock.now += 12
    log.set_paused(INTERCEPT, False)
    t.to_tunnel(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert summary(log) == [("http", "GET", "/stop", 200, 0, 0, "done", True)]


def test_websocket_upgrade_counts_the_bytes_until_the_end(clock: Clock) -> None:
    log = RequestLog()
    t = tap(log, clock)
    t.from_tunnel(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                  b"\r\n\x81\x02hi")
    t.to_tunnel(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                b"Upgrade: websocket\r\n\r\n\x81\x03hey")
    t.from_tunnel(b"\x81\x01!")
    [r] = log.records()
    assert (r.status, r.note, r.outcome) == (101, "upgraded", FlowOutcome.OPEN)
    clock.now += 3
    t.ended(reset=False)
    assert (r.request_bytes, r.response_bytes, r.outcome, r.duration) == (
        7, 5, FlowOutcome.DONE, 3.0)


# -- not HTTP/1.1 -------------------------------------------------------------------------------


def test_h2_is_one_connection_with_its_bytes(clock: Clock) -> None:
    log = RequestLog()
    t = tap(log, clock)
    t.from_tunnel(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00" * 9)
    t.to_tunnel(b"\x00" * 30)
    t.from_tunnel(b"\x00" * 10)
    clock.now += 2
    t.ended(reset=False)
    [r] = log.records()
    assert (r.kind, r.note, r.response_bytes, r.outcome, r.duration) == (
        FlowKind.TCP, "h2", 30, FlowOutcome.DONE, 2.0)
    assert r.request_bytes >= 10


def test_a_server_first_protocol_is_a_connection(clock: Clock) -> None:
    log = RequestLog()
    t = tap(log, clock)
    t.to_tunnel(b"+OK redis-like greeting\r\n")
    t.from_tunnel(b"PING\r\n")
    t.ended(reset=True)
    assert summary(log) == [("tcp", None, None, None, 6, 25, "reset", False)]


def test_garbage_then_close_is_a_connection(clock: Clock) -> None:
    log = RequestLog()
    t = tap(log, clock)
    t.from_tunnel(b"\x16\x03\x01\x00")  # a TLS hello's first bytes: h11 still waits
    t.ended(reset=False)
    assert summary(log) == [("tcp", None, None, None, 4, 0, "done", False)]


def test_a_connection_that_says_nothing_is_not_logged(clock: Clock) -> None:
    log = RequestLog()
    tap(log, clock).ended(reset=False)
    assert log.records() == []


def test_http_then_garbage_keeps_the_request_and_counts_the_rest(clock: Clock) -> None:
    log = RequestLog()
    t = tap(log, clock)
    t.from_tunnel(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    t.to_tunnel(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    t.from_tunnel(b"\x00\x01 not a request line\r\n\r\n")
    t.ended(reset=False)
    kinds = [(r.kind, r.status, r.outcome) for r in log.records()]
    assert kinds == [(FlowKind.HTTP, 200, FlowOutcome.DONE), (FlowKind.TCP, None, FlowOutcome.DONE)]


def test_deferred_reading_keeps_the_times_the_bytes_passed(clock: Clock) -> None:
    """With `defer` (the event loop's call_soon) the relay only queues; the log is read later,
    with the times the bytes passed."""
    log = RequestLog()
    later: list[Callable[[], None]] = []
    t = HttpTap(log, INTERCEPT, "echo-1", "198.18.1.7:40000", clock, later.append)
    t.from_tunnel(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    clock.now += 0.5
    t.to_tunnel(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert log.records() == [] and len(later) == 1  # one read scheduled for the burst
    clock.now += 9
    later.pop()()
    [r] = log.records()
    assert (r.status, r.started, r.duration) == (200, 1000.0, 0.5)
