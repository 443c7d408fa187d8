"""The adaptive stream window: it grows for a reader that keeps up with the path, never for one
that does not, and no interleaving of data, credit and time overruns it or deadlocks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from innerloop.core.mux_events import CreditAvailable, DataReceived
from mux_pair import WINDOW, Pair, open_accepted

RTT = 0.01
MAX = 16 * WINDOW


def tuned_pair(rtt: float = RTT) -> Pair:
    """A connected pair whose streams may grow to 16 windows; the client measured ``rtt``."""
    p = Pair(max_window=MAX)
    p.pump()
    p.client.rtt = rtt
    return p


def move(p: Pair, sid: int, rounds: int, pause: float) -> int:
    """The agent sends all its credit, the client consumes it after ``pause``; bytes moved."""
    moved = 0
    for _ in range(rounds):
        p.agent.send_data(sid, bytes(p.agent.credit(sid)))
        p.now += pause
        for event in p.pump()[0]:
            if isinstance(event, DataReceived):
                p.client.acknowledge(sid, len(event.data), p.now)
                moved += len(event.data)
        p.pump()
    return moved


def test_a_reader_faster_than_the_window_allows_grows_it_to_the_bound() -> None:
    p = tuned_pair()
    sid = open_accepted(p)
    move(p, sid, rounds=12, pause=RTT / 4)  # a window per quarter round trip: window-bound
    assert p.client.receive_window(sid) == MAX
    assert p.agent.credit(sid) > WINDOW  # the sender got the extra credit


def test_a_slow_reader_keeps_the_initial_window() -> None:
    p = tuned_pair()
    sid = open_accepted(p)
    move(p, sid, rounds=12, pause=10 * RTT)  # the reader, not the window, is the limit
    assert p.client.receive_window(sid) == WINDOW


def test_without_a_round_trip_or_a_clock_nothing_grows() -> None:
    p = tuned_pair(rtt=0.0)
    sid = open_accepted(p)
    move(p, sid, rounds=12, pause=0.0)
    assert p.client.receive_window(sid) == WINDOW
    p.client.rtt = RTT
    for _ in range(12):  # acknowledged without `now`: no growth either
        p.agent.send_data(sid, bytes(p.agent.credit(sid)))
        received = sum(len(e.data) for e in p.pump()[0] if isinstance(e, DataReceived))
        p.client.acknowledge(sid, received)
        p.pump()
    assert p.client.receive_window(sid) == WINDOW


def test_a_stalled_stream_does_not_grow_while_another_does() -> None:
    p = tuned_pair()
    stalled, flowing = open_accepted(p), open_accepted(p)
    p.agent.send_data(stalled, bytes(WINDOW))
    p.pump()  # delivered, never consumed
    move(p, flowing, rounds=12, pause=RTT / 4)
    assert p.client.receive_window(stalled) == WINDOW
    assert p.agent.credit(stalled) == 0
    assert p.client.receive_window(flowing) == MAX


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["send", "ack", "pump", "wait", "rtt"]),
                          st.integers(0, 1), st.integers(0, 4 * WINDOW)), max_size=80))
def test_no_interleaving_overruns_the_window_or_deadlocks(
        ops: list[tuple[str, int, int]]) -> None:
    """Whatever the sender sends, whenever the receiver consumes, however time and the round
    trip move: the receiver never holds more than its window, the window stays within its
    bound, and once the receiver consumed everything the sender can always send again."""
    p = tuned_pair()
    sids = [open_accepted(p), open_accepted(p)]
    buffered = {sid: 0 for sid in sids}

    def deliver() -> None:
        for event in p.pump()[0]:
            if isinstance(event, DataReceived):
                buffered[event.stream_id] += len(event.data)
            else:
                assert isinstance(event, CreditAvailable)

    for op, which, size in ops:
        sid = sids[which]
        if op == "send":
            p.agent.send_data(sid, bytes(min(size, p.agent.credit(sid))))
        elif op == "ack":
            done = min(size, buffered[sid])
            p.client.acknowledge(sid, done, p.now)
            buffered[sid] -= done
        elif op == "wait":
            p.now += size / WINDOW * RTT  # 0 … 4 round trips
        elif op == "rtt":
            p.client.rtt = size / WINDOW * RTT or None
        deliver()
        for s in sids:
            assert 0 <= buffered[s] <= p.client.receive_window(s) <= MAX
    for sid in sids:  # the reader catches up: credit must come back
        p.client.acknowledge(sid, buffered[sid], p.now)
        deliver()
        window = p.client.receive_window(sid)
        assert p.agent.credit(sid) >= window * 3 // 4
        assert p.agent.credit(sid) <= window
