"""The accept deadline under a burst: a client that keeps answering keeps its streams; a silent
one loses each after ``accept_timeout``; none waits beyond ``accept_limit``."""

from __future__ import annotations

import pytest
from innerloop.core.mux_events import StreamNotAccepted
from mux_pair import Pair


@pytest.fixture
def pair() -> Pair:
    return Pair.connected()


def offer(p: Pair, now: float) -> int:
    sid = p.agent.open_stream(15401, "p", now)
    p.pump()
    return sid


def answered(p: Pair, sid: int, now: float, accept: bool = True) -> None:
    if accept:
        p.client.accept(sid)
    else:
        p.client.reset(sid, "refused")
    p.agent.receive_data(p.client.data_to_send(), now)


def lost(p: Pair, now: float) -> list[int]:
    return [e.stream_id for e in p.agent.handle_timeout(now) if isinstance(e, StreamNotAccepted)]


def test_a_silent_client_loses_every_stream_after_the_timeout(pair: Pair) -> None:
    first, second = offer(pair, 0.0), offer(pair, 0.1)
    assert lost(pair, 0.299) == []
    assert lost(pair, 0.3) == [first]
    assert lost(pair, 0.4) == [second]


@pytest.mark.parametrize("accept", [True, False])
def test_an_answer_to_one_stream_extends_the_others(pair: Pair, accept: bool) -> None:
    first, second = offer(pair, 0.0), offer(pair, 0.0)
    answered(pair, first, 0.25, accept)  # an ACCEPT, or a decline: the client is working
    assert pair.agent.next_deadline() == pytest.approx(0.5)  # the first ping
    assert lost(pair, 0.5) == []
    assert pair.agent.next_deadline() == pytest.approx(0.55)
    events = pair.agent.handle_timeout(0.55)
    assert [e.reason for e in events if isinstance(e, StreamNotAccepted)] == [
        "not accepted within 550 ms"]
    assert second not in [e.stream_id for e in events if not isinstance(e, StreamNotAccepted)]


def test_no_stream_waits_beyond_the_limit_while_others_are_answered(pair: Pair) -> None:
    stuck = offer(pair, 0.0)
    now = 0.0
    while now < 2.7:  # the client answers a new stream every 0.2 s, never the stuck one
        now += 0.2
        answered(pair, offer(pair, now), now)
        pair.client.receive_data(pair.agent.data_to_send(), now)
        assert lost(pair, now) == []
        pair.client.receive_data(pair.agent.data_to_send(), now)  # the agent's pings
        pair.agent.receive_data(pair.client.data_to_send(), now)
    assert lost(pair, 3.0) == [stuck]  # ACCEPT_LIMIT_FACTOR × accept_timeout
