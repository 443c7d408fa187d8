"""The multiplexer, driven without any I/O: a client and an agent wired back to back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from innerloop.core.errors import LocalProtocolError, RemoteProtocolError
from innerloop.core.filters import AppProtocol, Mode, filter_from_json
from innerloop.core.frame_decoder import decode_all
from innerloop.core.frames import (
    MAX_PAYLOAD,
    VERSION,
    Accept,
    Claim,
    ClaimEntry,
    ClaimList,
    Data,
    Fin,
    Goodbye,
    Hello,
    Open,
    Ping,
    Pong,
    Reply,
    Reset,
    Status,
    Welcome,
    Window,
    encode,
)
from innerloop.core.mux import ConnectionState
from innerloop.core.mux_agent import AgentConnection
from innerloop.core.mux_client import ClientConnection
from innerloop.core.mux_events import (
    ClaimRequested,
    ClaimsListed,
    Closed,
    CreditAvailable,
    DataReceived,
    HandshakeDone,
    ListRequested,
    PauseRequested,
    ReleaseRequested,
    RequestDone,
    ResumeRequested,
    StreamAccepted,
    StreamEnded,
    StreamNotAccepted,
    StreamOpened,
    StreamReset,
)
from innerloop.core.request import WhilePaused
from mux_pair import WINDOW, Pair, open_accepted


@pytest.fixture
def pair() -> Pair:
    return Pair.connected()


def test_handshake_names_both_ends() -> None:
    p = Pair()
    client_events, agent_events = p.pump()
    assert client_events == [HandshakeDone("pod-a")]
    assert agent_events == [HandshakeDone("alice@laptop:1")]
    assert p.agent.client_id == "alice@laptop:1"
    assert p.client.state is p.agent.state is ConnectionState.OPEN


def test_agent_refuses_another_version_with_a_reason() -> None:
    agent = AgentConnection("pod-a", now=0)
    events = agent.receive_data(encode(Hello(1, "bob", WINDOW)), 0)
    reason = f"unsupported protocol version 1; this agent speaks {VERSION}"
    assert events == [Closed(reason)]
    assert decode_all(agent.data_to_send()) == [Goodbye(reason)]

    client = ClientConnection("bob", now=0)
    assert client.receive_data(encode(Goodbye(reason)), 0) == [
        Closed(f"the agent closed the tunnel: {reason}")]


@pytest.mark.parametrize(("frame", "message"), [
    (Welcome(9, "pod", WINDOW), f"protocol version 9, not {VERSION}"),
    (Welcome(VERSION, "pod", 0), "WELCOME window 0 out of range"),
    (Ping(1), "the agent may not send PING while the tunnel is handshake"),
])
def test_client_handshake_errors(frame: Welcome | Ping, message: str) -> None:
    client = ClientConnection("bob", now=0)
    with pytest.raises(RemoteProtocolError, match=message):
        client.receive_data(encode(frame), 0)
    assert client.close("protocol error") == [Closed("protocol error")]


@pytest.mark.parametrize(("frame", "message"), [
    (Hello(VERSION, "x", 0), "HELLO window 0 out of range"),
    (Ping(1), "the client may not send PING while the tunnel is handshake"),
])
def test_agent_handshake_errors(frame: Hello | Ping, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        AgentConnection("pod", now=0).receive_data(encode(frame), 0)


def test_window_must_be_positive() -> None:
    with pytest.raises(LocalProtocolError, match="window 0 out of range"):
        ClientConnection("bob", now=0, window=0)


def test_requests_reach_the_agent_and_replies_come_back(pair: Pair) -> None:
    claim = pair.client.claim(15401, "127.0.0.1:8080")
    release = pair.client.release(15401)
    pause = pair.client.pause(WhilePaused.HOLD)
    resume = pair.client.resume()
    assert pair.pump()[1] == [ClaimRequested(claim, 15401, "127.0.0.1:8080"),
                              ReleaseRequested(release, 15401), PauseRequested(pause, WhilePaused.HOLD),
                              ResumeRequested(resume)]
    pair.agent.reply(claim, Status.CONFLICT, holder="bob@desk:9", reason="taken")
    pair.agent.reply(release)
    assert pair.pump()[0] == [RequestDone(claim, Status.CONFLICT, "bob@desk:9", "taken"),
                              RequestDone(release, Status.OK, "", "")]
    with pytest.raises(LocalProtocolError, match="no pending request"):
        pair.agent.reply(claim)


def test_a_claim_carries_its_filter_mode_and_protocol_and_list_is_answered(
        pair: Pair) -> None:
    me = filter_from_json({"headers": {"x-dev": "me"}, "pathPrefix": "/api"})
    claim = pair.client.claim(15401, "127.0.0.1:8080", me, Mode.MIRROR, AppProtocol.H2)
    listing = pair.client.list_claims()
    assert pair.pump()[1] == [
        ClaimRequested(claim, 15401, "127.0.0.1:8080", Mode.MIRROR, AppProtocol.H2, me),
        ListRequested(listing)]
    entry = ClaimEntry(15401, "bob", Mode.MIRROR, me, AppProtocol.H2, WhilePaused.HOLD)
    pair.agent.send_claim_list(listing, [entry])
    assert pair.pump()[0] == [ClaimsListed(listing, (entry,))]
    with pytest.raises(LocalProtocolError, match="no pending request"):
        pair.agent.send_claim_list(listing, [])
    with pytest.raises(RemoteProtocolError, match="CLAIM_LIST to unknown request 7"):
        pair.client.receive_data(encode(ClaimList(7, ())), 0)


def test_request_ids_cannot_be_reused_or_invented(pair: Pair) -> None:
    pair.client.claim(15401, "x")
    pair.pump()
    with pytest.raises(RemoteProtocolError, match="request id 1 reused"):
        pair.agent.receive_data(encode(Claim(1, 15401, "x")), 0)
    with pytest.raises(RemoteProtocolError, match="REPLY to unknown request 7"):
        pair.client.receive_data(encode(Reply(7, Status.OK, "", "")), 0)


def test_stream_lifecycle_with_preamble_and_half_close(pair: Pair) -> None:
    sid = pair.agent.open_stream(15401, "10.0.0.9:5555", 0)
    pair.agent.send_data(sid, b"GET / HTTP/1.1\r\n\r\n")
    pair.agent.send_fin(sid)
    client_events, _ = pair.pump()
    assert client_events == [StreamOpened(sid, 15401, "10.0.0.9:5555"),
                             DataReceived(sid, b"GET / HTTP/1.1\r\n\r\n"), StreamEnded(sid)]
    pair.client.accept(sid)
    pair.client.send_data(sid, b"HTTP/1.1 200 OK\r\n\r\n")
    pair.client.send_fin(sid)
    assert pair.pump()[1] == [StreamAccepted(sid), DataReceived(sid, b"HTTP/1.1 200 OK\r\n\r\n"),
                              StreamEnded(sid)]
    assert not pair.client.is_active(sid)
    assert not pair.agent.is_active(sid)
    assert pair.agent.next_deadline() == pytest.approx(0.5)  # the accept deadline is gone


def test_client_cannot_send_before_accepting(pair: Pair) -> None:
    sid = pair.agent.open_stream(15401, "p", 0)
    pair.pump()
    with pytest.raises(LocalProtocolError, match="must be accepted"):
        pair.client.send_data(sid, b"x")
    with pytest.raises(LocalProtocolError, match="must be accepted"):
        pair.client.send_fin(sid)
    pair.client.accept(sid)
    with pytest.raises(LocalProtocolError, match="accepted twice"):
        pair.client.accept(sid)


@pytest.mark.parametrize("frame", [Data(1, b"x"), Fin(1)])
def test_agent_rejects_client_data_before_accept(pair: Pair, frame: Data | Fin) -> None:
    pair.agent.open_stream(15401, "p", 0)
    with pytest.raises(RemoteProtocolError, match="before ACCEPT"):
        pair.agent.receive_data(encode(frame), 0)


def test_frames_for_streams_never_opened_are_errors(pair: Pair) -> None:
    with pytest.raises(RemoteProtocolError, match="stream 3, which was never opened"):
        pair.agent.receive_data(encode(Window(3, 10)), 0)


def test_open_reusing_an_id_is_an_error(pair: Pair) -> None:
    pair.client.receive_data(encode(Open(1, 1, "p")), 0)
    with pytest.raises(RemoteProtocolError, match="OPEN reuses stream id 1"):
        pair.client.receive_data(encode(Open(1, 1, "p")), 0)


def test_late_frames_for_a_reset_stream_are_ignored(pair: Pair) -> None:
    sid = open_accepted(pair)
    pair.agent.reset(sid, "caller hung up")
    late = encode(Data(sid, b"late")) + encode(Window(sid, 5)) + encode(Fin(sid))
    assert pair.agent.receive_data(late + encode(Reset(sid, "x")) + encode(Accept(sid)), 0) == []
    assert pair.pump()[0] == [StreamReset(sid, "caller hung up")]
    pair.client.acknowledge(sid, 10)  # credit for a gone stream is dropped, not an error
    pair.agent.reset(sid, "again")  # resetting a gone stream sends nothing
    assert pair.agent.data_to_send() == b""


def test_stream_protocol_violations(pair: Pair) -> None:
    sid = open_accepted(pair)
    with pytest.raises(RemoteProtocolError, match="bad WINDOW increment 0"):
        pair.client.receive_data(encode(Window(sid, 0)), 0)
    pair.client.receive_data(encode(Fin(sid)), 0)
    with pytest.raises(RemoteProtocolError, match="data after FIN"):
        pair.client.receive_data(encode(Data(sid, b"x")), 0)
    with pytest.raises(RemoteProtocolError, match="FIN received twice"):
        pair.client.receive_data(encode(Fin(sid)), 0)
    with pytest.raises(RemoteProtocolError, match="accepted twice"):
        pair.agent.receive_data(encode(Accept(sid)), 0)


def test_local_stream_misuse_is_our_error(pair: Pair) -> None:
    sid = open_accepted(pair)
    with pytest.raises(LocalProtocolError, match="stream 99 is not active"):
        pair.agent.send_data(99, b"x")
    pair.agent.send_fin(sid)
    with pytest.raises(LocalProtocolError, match="data after FIN"):
        pair.agent.send_data(sid, b"")
    with pytest.raises(LocalProtocolError, match="FIN sent twice"):
        pair.agent.send_fin(sid)
    assert pair.agent.credit(sid) == 0
    with pytest.raises(LocalProtocolError, match="acknowledged 1 bytes but only 0"):
        pair.agent.acknowledge(sid, 1)


def test_flow_control_caps_the_sender_at_the_window(pair: Pair) -> None:
    sid = open_accepted(pair)
    assert pair.agent.credit(sid) == WINDOW
    pair.agent.send_data(sid, bytes(WINDOW))
    assert pair.agent.credit(sid) == 0
    with pytest.raises(LocalProtocolError, match="1 bytes exceed the credit of 0"):
        pair.agent.send_data(sid, b"x")
    pair.pump()
    pair.client.acknowledge(sid, WINDOW // 4 - 1)
    assert pair.pump()[1] == []  # below the batching threshold: no WINDOW yet
    pair.client.acknowledge(sid, 1)
    assert pair.pump()[1] == [CreditAvailable(sid)]
    assert pair.agent.credit(sid) == WINDOW // 4


def test_a_peer_exceeding_the_window_is_a_protocol_error(pair: Pair) -> None:
    sid = open_accepted(pair)
    with pytest.raises(RemoteProtocolError, match=f"exceed the window of {WINDOW}"):
        pair.client.receive_data(encode(Data(sid, bytes(WINDOW + 1))), 0)


def test_window_overflow_is_a_protocol_error(pair: Pair) -> None:
    sid = open_accepted(pair)
    with pytest.raises(RemoteProtocolError, match="bad WINDOW increment"):
        pair.agent.receive_data(encode(Window(sid, 2**31 - 1)), 0)


def test_a_stream_without_credit_does_not_stall_the_others(pair: Pair) -> None:
    stalled = open_accepted(pair)
    flowing = open_accepted(pair)
    pair.agent.send_data(stalled, bytes(WINDOW))  # the client never consumes it
    pair.pump()
    assert pair.agent.credit(stalled) == 0
    received = 0
    for _ in range(10):  # ten windows' worth through the other stream
        chunk = bytes(pair.agent.credit(flowing))
        pair.agent.send_data(flowing, chunk)
        for event in pair.pump()[0]:
            assert isinstance(event, DataReceived) and event.stream_id == flowing
            received += len(event.data)
            pair.client.acknowledge(flowing, len(event.data))
        pair.pump()
    assert received >= 10 * WINDOW * 3 // 4
    assert pair.agent.credit(stalled) == 0


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(["send", "ack", "pump"]), st.integers(0, 1),
                          st.integers(0, 3 * WINDOW)), max_size=60))
def test_receiver_never_buffers_more_than_its_window(ops: list[tuple[str, int, int]]) -> None:
    """Whatever the sender tries and however slowly the receiver consumes."""
    p = Pair()
    p.pump()
    sids = [open_accepted(p), open_accepted(p)]
    buffered = {sid: 0 for sid in sids}
    for op, which, size in ops:
        sid = sids[which]
        if op == "send":
            p.agent.send_data(sid, bytes(min(size, p.agent.credit(sid))))
        elif op == "ack":
            done = min(size, buffered[sid])
            p.client.acknowledge(sid, done)
            buffered[sid] -= done
        for event in p.pump()[0]:
            assert isinstance(event, DataReceived)
            buffered[event.stream_id] += len(event.data)
        assert all(0 <= b <= WINDOW for b in buffered.values())


def test_big_writes_are_split_into_frames_within_the_maximum() -> None:
    p = Pair()
    p.client = ClientConnection("c", now=0, window=4 * MAX_PAYLOAD)
    p.pump()
    sid = open_accepted(p)
    p.agent.send_data(sid, bytes(range(256)) * 700)
    frames = decode_all(p.agent.data_to_send())
    assert [len(f.data) for f in frames if isinstance(f, Data)] == [MAX_PAYLOAD, MAX_PAYLOAD, 48128]


def test_unaccepted_stream_falls_back_with_everything_the_caller_sent(pair: Pair) -> None:
    sid = pair.agent.open_stream(15401, "p", now=1.0)
    pair.agent.send_data(sid, b"POST /x HTTP/1.1\r\n")
    pair.agent.send_data(sid, b"Content-Length: 0\r\n\r\n")
    pair.agent.send_fin(sid)
    assert pair.agent.next_deadline() == pytest.approx(0.5)  # the first ping comes first
    assert pair.agent.handle_timeout(1.29) == []
    assert pair.agent.next_deadline() == pytest.approx(1.3)
    assert pair.agent.handle_timeout(1.3) == [StreamNotAccepted(
        sid, 15401, "not accepted within 300 ms",
        b"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n")]
    pair.client.receive_data(b"", 1.3)
    client_events, agent_events = pair.pump()
    assert StreamReset(sid, "not accepted within 300 ms") in client_events
    assert agent_events == []


def test_accept_racing_the_deadline_is_harmless(pair: Pair) -> None:
    sid = pair.agent.open_stream(15401, "p", now=0)
    pair.pump()
    pair.client.accept(sid)  # in flight while the agent gives up
    assert isinstance(pair.agent.handle_timeout(0.3)[0], StreamNotAccepted)
    client_events, agent_events = pair.pump()
    assert agent_events == []
    assert client_events == [StreamReset(sid, "not accepted within 300 ms")]


def test_client_declining_a_stream_sends_it_to_the_app(pair: Pair) -> None:
    sid = pair.agent.open_stream(15401, "p", now=0)
    pair.agent.send_data(sid, b"hello")
    pair.pump()
    pair.client.reset(sid, "127.0.0.1:8080 refused the connection")
    assert pair.pump()[1] == [StreamNotAccepted(
        sid, 15401, "client declined: 127.0.0.1:8080 refused the connection", b"hello")]


def test_pings_measure_rtt_and_keep_the_peer_alive(pair: Pair) -> None:
    assert pair.client.next_deadline() == pytest.approx(0.5)
    assert pair.client.handle_timeout(0.5) == []
    pair.now = 0.52
    pair.pump()
    assert pair.client.rtt == pytest.approx(0.02)
    assert pair.client.next_deadline() == pytest.approx(1.0)
    assert pair.agent.next_deadline() == pytest.approx(0.5)


def test_handshake_has_the_peer_deadline_and_stale_pongs_are_ignored() -> None:
    p = Pair()
    assert p.client.next_deadline() == pytest.approx(2.0)
    p.pump()
    assert p.client.rtt == 0  # HELLO → WELCOME, at the same instant here
    p.client.receive_data(encode(Pong(42)), 0.1)
    assert p.client.rtt == 0


def test_silent_peer_closes_the_tunnel_and_ends_every_stream(pair: Pair) -> None:
    accepted = open_accepted(pair, preamble=b"abc")
    pair.agent.receive_data(encode(Ping(1)), 0.5)  # the client's last sign of life
    pending = pair.agent.open_stream(15401, "p", 2.3)
    pair.agent.send_data(pending, b"xyz")
    assert pair.agent.handle_timeout(2.49) == []
    events = pair.agent.handle_timeout(2.5)
    reason = "the client was silent for 2 s"
    assert events == [StreamReset(accepted, reason),
                      StreamNotAccepted(pending, 15401, reason, b"xyz"), Closed(reason)]
    assert pair.agent.closed and pair.agent.close_reason == reason
    assert pair.agent.next_deadline() is None
    assert pair.agent.handle_timeout(9) == []
    assert Goodbye(reason) in decode_all(pair.agent.data_to_send())


def test_eof_without_goodbye(pair: Pair) -> None:
    sid = open_accepted(pair)
    reason = "the agent went away without saying goodbye"
    assert pair.client.receive_eof() == [StreamReset(sid, reason), Closed(reason)]
    assert pair.client.receive_eof() == []
    assert pair.client.receive_data(b"anything", 0) == []


def test_goodbye_and_commands_after_close(pair: Pair) -> None:
    sid = open_accepted(pair)
    assert pair.client.close("user left") == [StreamReset(sid, "user left"), Closed("user left")]
    assert pair.client.close("again") == []
    assert pair.pump()[1] == [StreamReset(sid, "the client closed the tunnel: user left"),
                              Closed("the client closed the tunnel: user left")]
    for command in (lambda: pair.client.claim(1, "x"), lambda: pair.client.acknowledge(sid, 1),
                    lambda: pair.agent.open_stream(1, "p", 0), lambda: pair.agent.reset(sid, "x")):
        with pytest.raises(LocalProtocolError, match="the tunnel is closed"):
            command()


def test_events_before_a_protocol_error_survive_into_close(pair: Pair) -> None:
    sid = open_accepted(pair)
    with pytest.raises(RemoteProtocolError):
        pair.client.receive_data(encode(Data(sid, b"ok")) + b"\xff" * 9, 0)
    assert pair.client.close("protocol error") == [
        DataReceived(sid, b"ok"), StreamReset(sid, "protocol error"), Closed("protocol error")]


@pytest.mark.parametrize(("side", "frame"), [
    ("client", Claim(1, 1, "x")), ("client", Hello(1, "x", 1)), ("agent", Open(1, 1, "p")),
    ("agent", Welcome(1, "x", 1)), ("agent", Reply(1, Status.OK, "", "")),
])
def test_frames_meant_for_the_other_role_are_rejected(
        pair: Pair, side: str, frame: Claim | Hello | Open | Welcome | Reply) -> None:
    conn = pair.client if side == "client" else pair.agent
    with pytest.raises(RemoteProtocolError, match="may not send"):
        conn.receive_data(encode(frame), 0)


def test_empty_data_frames_are_no_events(pair: Pair) -> None:
    sid = open_accepted(pair)
    assert pair.client.receive_data(encode(Data(sid, b"")), 0) == []


def test_long_reasons_are_truncated_to_fit(pair: Pair) -> None:
    sid = open_accepted(pair)
    pair.agent.reset(sid, "x" * 5000)
    (event,) = pair.pump()[0]
    assert isinstance(event, StreamReset) and len(event.reason) == 1024
