"""Frame codec: every frame round-trips, and garbage only ever raises our protocol error."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from innerloop.core.errors import LocalProtocolError, RemoteProtocolError
from innerloop.core.filters import AppProtocol, Mode, RequestFilter, filter_from_json
from innerloop.core.frame_decoder import FrameDecoder, decode_all
from innerloop.core.frames import (
    DATA_CODE,
    HEADER,
    MAX_PAYLOAD,
    Accept,
    Claim,
    ClaimEntry,
    ClaimList,
    Data,
    Dial,
    Fin,
    Frame,
    Goodbye,
    Hello,
    ListClaims,
    Open,
    Pause,
    Ping,
    Pong,
    Release,
    Reply,
    Reset,
    Resume,
    Status,
    Welcome,
    Window,
    encode,
)
from innerloop.core.request import WhilePaused

u16 = st.integers(0, 2**16 - 1)
u32 = st.integers(0, 2**32 - 1)
sid = st.integers(1, 2**32 - 1)
text = st.text(max_size=200)
request_filters: st.SearchStrategy[RequestFilter] = st.sampled_from([
    filter_from_json(m) for m in (
        {}, {"headers": {"x-dev": "me"}}, {"headers": {"x-t": "~^ä[0-9]+"}, "method": "POST"},
        {"path": "/a/b", "pathPrefix": "/a", "pathRegex": "b$"})])
entries = st.builds(ClaimEntry, u16, text, st.sampled_from(Mode), request_filters,
                    st.sampled_from(AppProtocol), st.none() | st.sampled_from(WhilePaused))

frames: st.SearchStrategy[Frame] = st.one_of(
    st.builds(Hello, u16, text, u32),
    st.builds(Welcome, u16, text, u32),
    st.builds(Goodbye, text),
    st.builds(Ping, st.integers(0, 2**64 - 1)),
    st.builds(Pong, st.integers(0, 2**64 - 1)),
    st.builds(Claim, u32, u16, text, st.sampled_from(Mode), st.sampled_from(AppProtocol),
              request_filters),
    st.builds(ListClaims, u32),
    st.builds(ClaimList, u32, st.lists(entries, max_size=4).map(tuple)),
    st.builds(Release, u32, u16),
    st.builds(Pause, u32, st.sampled_from(WhilePaused)),
    st.builds(Resume, u32),
    st.builds(Reply, u32, st.sampled_from(Status), text, text),
    st.builds(Open, sid, u16, text),
    st.builds(Accept, sid),
    st.builds(Data, sid, st.binary(max_size=3000)),
    st.builds(Window, sid, u32),
    st.builds(Fin, sid),
    st.builds(Reset, sid, text),
    st.builds(Dial, sid, text, u16),
)


@given(st.lists(frames, max_size=20), st.data())
def test_any_frames_round_trip_however_the_bytes_are_chunked(
        sent: list[Frame], data: st.DataObject) -> None:
    wire = b"".join(encode(f) for f in sent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=10)))
    decoder = FrameDecoder()
    received: list[Frame] = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)]):
        decoder.feed(wire[start:end])
        while (frame := decoder.next_frame()) is not None:
            received.append(frame)
    assert received == sent


@settings(max_examples=500)
@given(st.binary(max_size=400))
def test_garbage_yields_frames_or_our_protocol_error_only(garbage: bytes) -> None:
    decoder = FrameDecoder(max_payload=256)
    decoder.feed(garbage)
    try:
        for _ in range(len(garbage) + 1):  # a frame takes 9 bytes or more: this must end
            if decoder.next_frame() is None:
                break
        else:
            pytest.fail("the decoder kept producing frames")
    except RemoteProtocolError:
        pass


@given(frames, st.integers(1, 8), st.binary(min_size=1, max_size=8))
def test_corrupted_frame_never_raises_anything_else(frame: Frame, at: int, junk: bytes) -> None:
    wire = bytearray(encode(frame))
    wire[at % len(wire):at % len(wire) + len(junk)] = junk
    try:
        decode_all(bytes(wire))
    except RemoteProtocolError:
        pass


def test_frames_before_a_malformed_one_are_delivered() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode(Fin(1)) + b"\xff" * 9)
    assert decoder.next_frame() == Fin(1)
    with pytest.raises(RemoteProtocolError):
        decoder.next_frame()


def header(length: int, code: int, stream: int) -> bytes:
    return HEADER.pack(length, code, stream)


@pytest.mark.parametrize(("wire", "message"), [
    (header(0, 0x7F, 0), "unknown frame type 0x7f"),
    (header(MAX_PAYLOAD + 1, 0x22, 1), "exceeds the maximum"),
    (header(0, 0x22, 0), "DATA frame needs a stream id"),
    (header(4, 0x26, 0) + bytes(4), "DIAL frame needs a stream id"),
    (header(4, 0x26, 2) + b"\x00\x03db", "DIAL frame truncated"),
    (header(8, 0x04, 3) + bytes(8), "PING frame must use stream 0"),
    (header(2, 0x04, 0) + bytes(2), "PING frame truncated"),
    (header(9, 0x04, 0) + bytes(9), "1 trailing bytes"),
    (header(1, 0x03, 0) + b"\x00", "GOODBYE frame truncated"),
    (header(4, 0x03, 0) + b"\x00\x05ab", "GOODBYE frame truncated"),
    (header(4, 0x03, 0) + b"\x00\x02\xff\xfe", "not UTF-8"),
    (header(5, 0x12, 0) + bytes(4) + b"\x07", "PAUSE frame: 7 is not a valid WhilePaused code"),
    (header(9, 0x14, 0) + bytes(4) + b"\x09" + bytes(4), "REPLY frame: 9 is not a valid Status"),
    (header(14, 0x10, 0) + bytes(8) + b"\x05\x00\x00\x02{}", "CLAIM frame: 5 is not a valid Mode"),
    (header(14, 0x10, 0) + bytes(8) + b"\x00\x09\x00\x02{}",
     "CLAIM frame: 9 is not a valid AppProtocol"),
    (header(24, 0x10, 0) + bytes(8) + b"\x00\x00\x00\x0c{\"path\":\"x\"}",
     "CLAIM frame: filter: bad path 'x' in a filter"),
    (header(8, 0x16, 0) + bytes(4) + b"\x00\x02{}", "CLAIM_LIST frame: bad claim list"),
    (header(9, 0x16, 0) + bytes(4) + b"\x00\x03[1]", "CLAIM_LIST frame: bad claim list"),
])
def test_malformed_frames_are_named_precisely(wire: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        decode_all(wire)


def test_oversized_length_is_refused_before_the_payload_arrives() -> None:
    decoder = FrameDecoder(max_payload=16)
    decoder.feed(header(17, 0x22, 1))
    with pytest.raises(RemoteProtocolError, match="17 bytes exceeds the maximum of 16"):
        decoder.next_frame()


def test_partial_frame_waits_for_more_bytes() -> None:
    wire = encode(Data(5, b"hello"))
    decoder = FrameDecoder()
    decoder.feed(wire[:3])
    assert decoder.next_frame() is None
    decoder.feed(wire[3:-1])
    assert decoder.next_frame() is None
    decoder.feed(wire[-1:] + wire)
    assert decoder.next_frame() == Data(5, b"hello")
    assert decoder.next_frame() == Data(5, b"hello")
    assert decoder.next_frame() is None


@pytest.mark.parametrize(("frame", "message"), [
    (Data(0, b"x"), "needs a stream id > 0"),
    (Open(1, 70000, "p"), "Open: "),
    (Goodbye("x" * 70000), "Goodbye: "),
    (Data(1, bytes(MAX_PAYLOAD + 1)), "exceeds 65536"),
])
def test_encoding_what_does_not_fit_is_our_error(frame: Frame, message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        encode(frame)


def test_wire_layout_is_stable() -> None:
    """docs/protocol.md describes these exact bytes."""
    assert encode(Hello(2, "ab", 65536)) == bytes.fromhex("0000000a01 00000000 0002 0002 6162 00010000")
    assert encode(Data(7, b"hi")) == bytes.fromhex("0000000222 00000007 6869")
    assert encode(Window(7, 16)) == bytes.fromhex("0000000423 00000007 00000010")
    assert encode(Dial(2, "db", 5432)) == bytes.fromhex("0000000626 00000002 0002 6462 1538")


@given(st.integers(1, 2**32 - 1), st.binary(max_size=300))
def test_a_data_header_and_its_payload_are_the_encoded_frame(stream_id: int, payload: bytes) -> None:
    """What the multiplexer writes without building a Data frame."""
    assert HEADER.pack(len(payload), DATA_CODE, stream_id) + payload == encode(
        Data(stream_id, payload))


def test_frames_are_values_compared_by_type_and_fields() -> None:
    """Plain classes, not dataclasses (cheaper to import), but the same value semantics."""
    assert Data(1, b"x") == Data(1, b"x") and hash(Data(1, b"x")) == hash(Data(1, b"x"))
    assert Data(1, b"x") != Data(1, b"y")
    assert Ping(1) != Pong(1)
    assert Claim(1, 80, "l") == Claim(1, 80, "l", Mode.ROUTE, AppProtocol.AUTO)
    assert repr(Reset(3, "gone")) == "Reset(stream_id=3, reason='gone')"
    assert len({Fin(1), Fin(1), Fin(2)}) == 2


@given(st.lists(frames, max_size=12), st.data())
def test_frames_read_in_any_rhythm_from_any_kind_of_buffer(sent: list[Frame],
                                                            data: st.DataObject) -> None:
    """The decoder parses where the input lies: chunks may be bytes, views or bytearrays that
    the caller reuses once the decoder asks for more, and the reader may stop before the input
    is used up."""
    wire = b"".join(encode(f) for f in sent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=10)))
    decoder = FrameDecoder()
    received: list[Frame] = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)]):
        kind = data.draw(st.sampled_from([bytes, bytearray, memoryview]))
        chunk = kind(wire[start:end])
        decoder.feed(chunk)
        for _ in range(data.draw(st.integers(0, 3))):
            if (frame := decoder.next_frame()) is None:
                if isinstance(chunk, bytearray):
                    chunk[:] = b"\xff" * len(chunk)  # reused: the decoder kept what it needs
                break
            received.append(frame)
    while (frame := decoder.next_frame()) is not None:
        received.append(frame)
    assert received == sent
