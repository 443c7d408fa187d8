"""Outbound streams (protocol 2): the client DIALs, the agent connects from the pod and ACCEPTs
or RESETs; both ends open streams at once, from their own half of the ids."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from innerloop.core.errors import LocalProtocolError, RemoteProtocolError
from innerloop.core.frame_decoder import decode_all
from innerloop.core.frames import (
    VERSION,
    Accept,
    Data,
    Dial,
    Fin,
    Frame,
    Goodbye,
    Hello,
    Open,
    Welcome,
    Window,
    encode,
)
from innerloop.core.mux import Connection
from innerloop.core.mux_agent import AgentConnection
from innerloop.core.mux_client import ClientConnection
from innerloop.core.mux_events import (
    Closed,
    DataReceived,
    DialRequested,
    MuxEvent,
    StreamAccepted,
    StreamEnded,
    StreamNotAccepted,
    StreamOpened,
    StreamReset,
)
from mux_pair import WINDOW, Pair, open_accepted


@pytest.fixture
def pair() -> Pair:
    return Pair.connected()


def dial_accepted(p: Pair, host: str = "payments.shop.svc.cluster.local", port: int = 80) -> int:
    sid = p.client.dial(host, port)
    assert p.pump()[1] == [DialRequested(sid, host, port)]
    p.agent.accept(sid)
    assert p.pump()[0] == [StreamAccepted(sid)]
    return sid


def test_version_is_3_and_version_2_peers_are_refused_with_a_reason() -> None:
    assert VERSION == 3
    agent = AgentConnection("pod-a", now=0)
    reason = "unsupported protocol version 2; this agent speaks 3"
    assert agent.receive_data(encode(Hello(2, "old", WINDOW)), 0) == [Closed(reason)]
    assert decode_all(agent.data_to_send()) == [Goodbye(reason)]
    client = ClientConnection("c", now=0)
    with pytest.raises(RemoteProtocolError, match="protocol version 2, not 3") as refused:
        client.receive_data(encode(Welcome(2, "old-agent", WINDOW)), 0)
    client.close(f"protocol error: {refused.value}")  # what the shell does
    assert decode_all(client.data_to_send())[-1] == Goodbye(
        "protocol error: the agent answered with protocol version 2, not 3")


def test_dial_accept_data_both_ways_and_half_close(pair: Pair) -> None:
    sid = pair.client.dial("redis", 6379)
    assert sid == 2
    assert decode_all(pair.client.data_to_send()) == [Dial(2, "redis", 6379)]
    assert pair.agent.receive_data(encode(Dial(2, "redis", 6379)), 0) == [
        DialRequested(2, "redis", 6379)]
    assert pair.agent.credit(sid) == 0  # not before it is connected and accepted
    pair.agent.accept(sid)
    assert pair.agent.credit(sid) == WINDOW
    pair.client.send_data(sid, b"PING\r\n")
    pair.client.send_fin(sid)
    client_events, agent_events = pair.pump()
    assert client_events == [StreamAccepted(sid)]
    assert agent_events == [DataReceived(sid, b"PING\r\n"), StreamEnded(sid)]
    pair.agent.send_data(sid, b"+PONG\r\n")  # the other direction is still open
    pair.agent.send_fin(sid)
    assert pair.pump()[0] == [DataReceived(sid, b"+PONG\r\n"), StreamEnded(sid)]
    assert not pair.client.is_active(sid) and not pair.agent.is_active(sid)


@pytest.mark.parametrize("reason", ["connection refused", "no such host",
                                    "timed out after 10 s"])
def test_agent_refusing_a_dial_resets_it_with_the_reason(pair: Pair, reason: str) -> None:
    sid = pair.client.dial("payments", 80)
    pair.pump()
    pair.agent.reset(sid, reason)
    assert pair.pump() == ([StreamReset(sid, reason)], [])
    assert not pair.client.is_active(sid)


def test_client_may_send_right_after_dial_and_the_agent_gets_it_in_order(pair: Pair) -> None:
    """The one who opens a stream may send at once (as the agent does after OPEN)."""
    sid = pair.client.dial("db", 5432)
    assert pair.client.credit(sid) == WINDOW
    pair.client.send_data(sid, b"startup")
    assert pair.pump()[1] == [DialRequested(sid, "db", 5432), DataReceived(sid, b"startup")]


def test_client_giving_up_before_accept_resets_the_dial(pair: Pair) -> None:
    sid = pair.client.dial("slow", 80)
    pair.pump()
    pair.client.reset(sid, "cancelled")
    assert pair.pump() == ([], [StreamReset(sid, "cancelled")])
    assert not pair.agent.is_active(sid)  # the agent's shell checks this once connected
    with pytest.raises(LocalProtocolError, match="stream 2 is not active"):
        pair.agent.accept(sid)


def test_both_ends_open_streams_at_once_from_their_own_ids(pair: Pair) -> None:
    opened = [pair.agent.open_stream(15401, "p", 0) for _ in range(3)]
    dialled = [pair.client.dial("svc", 80) for _ in range(3)]
    assert (opened, dialled) == ([1, 3, 5], [2, 4, 6])
    client_events, agent_events = pair.pump()
    assert [e.stream_id for e in client_events if isinstance(e, StreamOpened)] == opened
    assert [e.stream_id for e in agent_events if isinstance(e, DialRequested)] == dialled
    for sid in opened:
        pair.client.accept(sid)
    for sid in dialled:
        pair.agent.accept(sid)
    pair.pump()
    for sid in opened + dialled:
        pair.agent.send_data(sid, b"a%d" % sid)
        pair.client.send_data(sid, b"c%d" % sid)
    client_events, agent_events = pair.pump()
    assert client_events == [DataReceived(s, b"a%d" % s) for s in opened + dialled]
    assert agent_events == [DataReceived(s, b"c%d" % s) for s in opened + dialled]


def test_dialled_streams_have_no_accept_deadline_and_reset_when_the_tunnel_closes(
        pair: Pair) -> None:
    pending = pair.client.dial("slow", 80)
    pair.pump()
    live = dial_accepted(pair)
    assert pair.agent.next_deadline() == pytest.approx(0.5)  # only the ping
    assert pair.agent.handle_timeout(0.4) == []
    events = pair.agent.close("the agent is stopping")
    assert events == [StreamReset(pending, "the agent is stopping"),
                      StreamReset(live, "the agent is stopping"), Closed("the agent is stopping")]
    reason = "the agent closed the tunnel: the agent is stopping"
    assert pair.pump()[0] == [StreamReset(pending, reason), StreamReset(live, reason),
                              Closed(reason)]


def test_credit_bounds_a_dialled_stream_like_any_other(pair: Pair) -> None:
    sid = dial_accepted(pair)
    pair.client.send_data(sid, bytes(WINDOW))
    with pytest.raises(LocalProtocolError, match="exceed the credit of 0"):
        pair.client.send_data(sid, b"x")
    pair.pump()
    pair.agent.acknowledge(sid, WINDOW)
    pair.pump()
    assert pair.client.credit(sid) == WINDOW
    with pytest.raises(RemoteProtocolError, match=f"exceed the window of {WINDOW}"):
        pair.agent.receive_data(encode(Data(sid, bytes(WINDOW + 1))), 0)


def test_refused_dial_does_not_disturb_an_accepted_inbound_stream(pair: Pair) -> None:
    inbound = open_accepted(pair, preamble=b"GET /")
    refused = pair.client.dial("nowhere", 1)
    pair.pump()
    pair.agent.reset(refused, "connection refused")
    pair.client.send_data(inbound, b"200 OK")
    client_events, agent_events = pair.pump()
    assert client_events == [StreamReset(refused, "connection refused")]
    assert agent_events == [DataReceived(inbound, b"200 OK")]


# -- the peer breaking the rules: RemoteProtocolError --------------------------------------

def _dialled(p: Pair) -> None:
    p.client.dial("svc", 80)
    p.pump()


def _opened(p: Pair) -> None:
    p.agent.open_stream(15401, "p", 0)
    p.pump()


def _dialled_4(p: Pair) -> None:
    p.agent.receive_data(encode(Dial(4, "svc", 80)), 0)


def _nothing(p: Pair) -> None:
    pass


REMOTE_ERRORS: list[tuple[str, Callable[[Pair], None], str, Frame, str]] = [
    ("DIAL from the agent", _nothing, "client", Dial(2, "svc", 80),
     "the agent may not send DIAL"),
    ("odd id in a DIAL", _nothing, "agent", Dial(1, "svc", 80),
     "DIAL on stream 1: the client opens even ids only"),
    ("even id in an OPEN", _nothing, "client", Open(2, 15401, "p"),
     "OPEN on stream 2: the agent opens odd ids only"),
    ("reused DIAL id", _dialled, "agent", Dial(2, "svc", 80), "DIAL reuses stream id 2"),
    ("DIAL id below the latest", _dialled_4, "agent", Dial(2, "x", 1),
     "DIAL reuses stream id 2"),
    ("reused OPEN id", _opened, "client", Open(1, 15401, "p"), "OPEN reuses stream id 1"),
    ("ACCEPT of a dial never sent", _nothing, "client", Accept(4),
     "ACCEPT for stream 4, which was never opened"),
    ("agent ACCEPTs its own OPEN", _opened, "client", Accept(1),
     "ACCEPT for stream 1, which the agent opened itself"),
    ("client ACCEPTs its own DIAL", _dialled, "agent", Accept(2),
     "ACCEPT for stream 2, which the client opened itself"),
    ("agent sends DATA before ACCEPT", _dialled, "client", Data(2, b"x"),
     "DATA on stream 2 before ACCEPT"),
    ("agent sends FIN before ACCEPT", _dialled, "client", Fin(2), "FIN on stream 2 before ACCEPT"),
    ("client sends DATA before ACCEPT", _opened, "agent", Data(1, b"x"),
     "DATA on stream 1 before ACCEPT"),
    ("DATA for a dial never sent", _nothing, "agent", Data(2, b"x"),
     "DATA for stream 2, which was never opened"),
    ("WINDOW for a dial never sent", _dialled, "client", Window(4, 1),
     "WINDOW for stream 4, which was never opened"),
]


@pytest.mark.parametrize(("setup", "receiver", "frame", "message"),
                         [case[1:] for case in REMOTE_ERRORS], ids=[c[0] for c in REMOTE_ERRORS])
def test_protocol_violations_are_the_peers_errors(
        pair: Pair, setup: Callable[[Pair], None], receiver: str, frame: Frame,
        message: str) -> None:
    setup(pair)
    conn: Connection = pair.client if receiver == "client" else pair.agent
    with pytest.raises(RemoteProtocolError, match=message):
        conn.receive_data(encode(frame), 0)


def test_accepting_a_dial_twice_is_the_agents_error_on_the_wire(pair: Pair) -> None:
    sid = dial_accepted(pair)
    with pytest.raises(RemoteProtocolError, match="stream 2 accepted twice"):
        pair.client.receive_data(encode(Accept(sid)), 0)


# -- our own misuse: LocalProtocolError -------------------------------------------------------

LOCAL_ERRORS: list[tuple[str, Callable[[Pair], object], str]] = [
    ("client accepts its own dial", lambda p: p.client.accept(p.client.dial("s", 1)),
     "stream 2 was opened here; the agent accepts it"),
    ("agent accepts its own open", lambda p: p.agent.accept(p.agent.open_stream(1, "p", 0)),
     "stream 1 was opened here; the client accepts it"),
    ("port 0", lambda p: p.client.dial("s", 0), "cannot dial port 0"),
    ("port 65536", lambda p: p.client.dial("s", 65536), "cannot dial port 65536"),
    ("host too long", lambda p: p.client.dial("h" * 70000, 80), "Dial: "),
]


@pytest.mark.parametrize(("command", "message"), [case[1:] for case in LOCAL_ERRORS],
                         ids=[c[0] for c in LOCAL_ERRORS])
def test_misuse_is_our_error(pair: Pair, command: Callable[[Pair], object], message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        command(pair)


def test_a_refused_dial_command_allocates_no_id(pair: Pair) -> None:
    with pytest.raises(LocalProtocolError):
        pair.client.dial("h" * 70000, 80)
    assert pair.client.dial("ok", 80) == 2


def test_agent_may_not_send_on_a_dial_before_accepting_it(pair: Pair) -> None:
    sid = pair.client.dial("s", 1)
    pair.pump()
    for command in (lambda: pair.agent.send_data(sid, b""), lambda: pair.agent.send_fin(sid)):
        with pytest.raises(LocalProtocolError, match="must be accepted before sending"):
            command()
    pair.agent.accept(sid)
    with pytest.raises(LocalProtocolError, match="accepted twice"):
        pair.agent.accept(sid)


def test_dial_needs_an_open_tunnel() -> None:
    client = ClientConnection("c", now=0)
    with pytest.raises(LocalProtocolError, match="the tunnel is handshake"):
        client.dial("s", 80)
    client.close("bye")
    with pytest.raises(LocalProtocolError, match="the tunnel is closed"):
        client.dial("s", 80)


# -- any interleaving, both directions at once ------------------------------------------------

SIDES = ("client", "agent")
op = st.one_of(
    st.tuples(st.sampled_from(["open", "dial", "pump"]), st.just(""), st.just(0), st.just(0)),
    st.tuples(st.sampled_from(["accept", "reset", "fin", "ack"]), st.sampled_from(SIDES),
              st.integers(0, 7), st.just(0)),
    st.tuples(st.just("send"), st.sampled_from(SIDES), st.integers(0, 7),
              st.integers(1, 2 * WINDOW)),
)


class Model:
    """What each end has seen, built only from the events the connections report."""

    def __init__(self, p: Pair) -> None:
        self.p = p
        self.ids: list[int] = []  # every stream, in the order it was opened
        self.to_accept: dict[str, set[int]] = {side: set() for side in SIDES}
        self.may_send: dict[str, set[int]] = {side: set() for side in SIDES}
        self.sent: dict[tuple[str, int], bytes] = defaultdict(bytes)
        self.received: dict[tuple[str, int], bytes] = defaultdict(bytes)
        self.unacked: dict[tuple[str, int], int] = defaultdict(int)
        self.dead: set[int] = set()

    def conn(self, side: str) -> Connection:
        return self.p.client if side == "client" else self.p.agent

    def pick(self, k: int) -> int | None:
        return self.ids[k % len(self.ids)] if self.ids else None

    def apply(self, name: str, side: str, k: int, size: int) -> None:
        sid = self.pick(k)
        conn = self.conn(side) if side else None
        if name == "open":
            sid = self.p.agent.open_stream(15401, "p", self.p.now)
            self.ids.append(sid)
            self.may_send["agent"].add(sid)
        elif name == "dial":
            sid = self.p.client.dial("svc", 80)
            self.ids.append(sid)
            self.may_send["client"].add(sid)
        elif name == "pump":
            self.pump()
        elif conn is None or sid is None or not conn.is_active(sid):
            return
        elif name == "accept" and sid in self.to_accept[side]:
            conn.accept(sid)
            self.to_accept[side].discard(sid)
            self.may_send[side].add(sid)
        elif name == "reset":
            conn.reset(sid, "r")
            self.dead.add(sid)
        elif name == "fin" and sid in self.may_send[side]:
            conn.send_fin(sid)
            self.may_send[side].discard(sid)
        elif name == "ack" and self.unacked[side, sid]:
            conn.acknowledge(sid, self.unacked[side, sid])
            self.unacked[side, sid] = 0
        elif name == "send" and sid in self.may_send[side] and conn.credit(sid):
            data = bytes([sid % 256]) * min(size, conn.credit(sid))
            conn.send_data(sid, data)
            self.sent[side, sid] += data

    def pump(self) -> None:
        client_events, agent_events = self.p.pump()
        for side, events in (("client", client_events), ("agent", agent_events)):
            for event in events:
                self.see(side, event)

    def see(self, side: str, event: MuxEvent) -> None:
        if isinstance(event, (StreamOpened, DialRequested)):
            self.to_accept[side].add(event.stream_id)
        elif isinstance(event, DataReceived):
            self.received[side, event.stream_id] += event.data
            self.unacked[side, event.stream_id] += len(event.data)
            assert self.unacked[side, event.stream_id] <= WINDOW
        elif isinstance(event, (StreamReset, StreamNotAccepted)):
            self.dead.add(event.stream_id)


@settings(max_examples=300, deadline=None)
@given(st.lists(op, max_size=80))
def test_any_interleaving_keeps_ids_apart_and_every_byte_in_order(
        ops: list[tuple[str, str, int, int]]) -> None:
    """Well-behaved ends never trip each other's checks, whoever opens what, in any order."""
    model = Model(Pair.connected())
    for name, side, k, size in ops:
        model.apply(name, side, k, size)
    model.pump()
    agent_ids = [s for s in model.ids if s % 2]
    client_ids = [s for s in model.ids if not s % 2]
    assert agent_ids == list(range(1, 2 * len(agent_ids), 2))
    assert client_ids == list(range(2, 2 * len(client_ids) + 1, 2))
    for sid in model.ids:
        assert model.p.client.is_active(sid) == model.p.agent.is_active(sid)
        if sid not in model.dead:
            assert model.received["agent", sid] == model.sent["client", sid]
            assert model.received["client", sid] == model.sent["agent", sid]
