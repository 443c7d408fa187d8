"""SOCKS5 server handshake: table tests for every answer, and properties over any chunking and
any garbage (only our protocol error may come out)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from innerloop.core.errors import LocalProtocolError, RemoteProtocolError
from innerloop.core.socks5 import (
    SocksAddressType,
    SocksConnect,
    SocksEffect,
    SocksHandshake,
    SocksRefuse,
    SocksReply,
    SocksSend,
    reply_bytes,
)

HELLO = b"\x05\x01\x00"
CHOSE_NO_AUTH = SocksSend(b"\x05\x00")
FAILED_BOUND = b"\x01\x00\x00\x00\x00\x00\x00"  # ATYP IPv4 0.0.0.0:0


def request(atyp: int, address: bytes, port: int, command: int = 1) -> bytes:
    return bytes([5, command, 0, atyp]) + address + struct.pack("!H", port)


def domain(name: bytes) -> bytes:
    return bytes([len(name)]) + name


def run(wire: bytes) -> list[SocksEffect]:
    return SocksHandshake().receive(wire)


@pytest.mark.parametrize(("wire", "expected"), [
    pytest.param(HELLO + request(1, bytes([10, 96, 0, 10]), 80),
                 [CHOSE_NO_AUTH, SocksConnect("10.96.0.10", 80, SocksAddressType.IPV4)],
                 id="ipv4"),
    pytest.param(HELLO + request(3, domain(b"payments.shop"), 8080),
                 [CHOSE_NO_AUTH, SocksConnect("payments.shop", 8080, SocksAddressType.DOMAIN)],
                 id="domain"),
    pytest.param(HELLO + request(4, bytes(15) + b"\x01", 443),
                 [CHOSE_NO_AUTH, SocksConnect("::1", 443, SocksAddressType.IPV6)],
                 id="ipv6"),
    pytest.param(b"\x05\x03\x02\x01\x00" + request(3, domain(b"redis"), 6379),
                 [CHOSE_NO_AUTH, SocksConnect("redis", 6379, SocksAddressType.DOMAIN)],
                 id="no-auth among other methods"),
    pytest.param(b"\x05\x01\x02", [SocksRefuse(b"\x05\xff", "")], id="password only"),
    pytest.param(b"\x05\x00", [SocksRefuse(b"\x05\xff", "")], id="no methods at all"),
    pytest.param(HELLO + request(1, bytes(4), 80, command=2),
                 [CHOSE_NO_AUTH, SocksRefuse(b"\x05\x07\x00" + FAILED_BOUND, "")], id="BIND"),
    pytest.param(HELLO + request(3, domain(b"x"), 53, command=3),
                 [CHOSE_NO_AUTH, SocksRefuse(b"\x05\x07\x00" + FAILED_BOUND, "")],
                 id="UDP ASSOCIATE"),
    pytest.param(HELLO + b"\x05\x01\x00\x09",
                 [CHOSE_NO_AUTH, SocksRefuse(b"\x05\x08\x00" + FAILED_BOUND, "")],
                 id="unknown address type"),
    pytest.param(HELLO, [CHOSE_NO_AUTH], id="greeting only"),
    pytest.param(HELLO + b"\x05\x01\x00\x03\x05pay", [CHOSE_NO_AUTH], id="request incomplete"),
    pytest.param(HELLO + b"\x05\x01\x00\x03", [CHOSE_NO_AUTH], id="domain length missing"),
    pytest.param(b"\x05", [], id="method count missing"),
    pytest.param(b"", [], id="nothing"),
])
def test_answers(wire: bytes, expected: list[SocksEffect]) -> None:
    got = run(wire)
    assert [_without_reason(e) for e in got] == expected
    assert all(e.reason for e in got if isinstance(e, SocksRefuse))


def _without_reason(effect: SocksEffect) -> SocksEffect:
    return SocksRefuse(effect.data, "") if isinstance(effect, SocksRefuse) else effect


@pytest.mark.parametrize("wire", [
    pytest.param(b"\x04\x01\x00\x50", id="SOCKS4"),
    pytest.param(b"GET / HTTP/1.1\r\n", id="HTTP"),
    pytest.param(HELLO + b"\x04\x01\x00\x01", id="request version"),
    pytest.param(HELLO + request(3, domain(b""), 80), id="empty domain"),
    pytest.param(HELLO + request(3, domain("zahlungen-ü".encode()), 80), id="non-ASCII domain"),
    pytest.param(HELLO + request(3, domain(b"a b"), 80), id="space in domain"),
    pytest.param(HELLO + request(3, domain(b"a\x00b"), 80), id="NUL in domain"),
])
def test_bytes_that_are_no_socks5_raise_the_peers_protocol_error(wire: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        run(wire)


@pytest.mark.parametrize(("code", "host", "port", "wire"), [
    (SocksReply.SUCCEEDED, "127.0.0.1", 41234, b"\x05\x00\x00\x01\x7f\x00\x00\x01\xa1\x12"),
    (SocksReply.SUCCEEDED, "::1", 1, b"\x05\x00\x00\x04" + bytes(15) + b"\x01\x00\x01"),
    (SocksReply.SUCCEEDED, "localhost", 2, b"\x05\x00\x00\x03\x09localhost\x00\x02"),
    (SocksReply.HOST_UNREACHABLE, "0.0.0.0", 0, b"\x05\x04\x00" + FAILED_BOUND),
    (SocksReply.CONNECTION_REFUSED, "0.0.0.0", 0, b"\x05\x05\x00" + FAILED_BOUND),
    (SocksReply.GENERAL_FAILURE, "0.0.0.0", 0, b"\x05\x01\x00" + FAILED_BOUND),
])
def test_reply_bytes(code: SocksReply, host: str, port: int, wire: bytes) -> None:
    assert reply_bytes(code, host, port) == wire


@pytest.mark.parametrize("host", ["", "a" * 256, "zahlungen-ü", "a b"])
def test_a_bound_address_that_does_not_fit_is_our_error(host: str) -> None:
    with pytest.raises(LocalProtocolError):
        reply_bytes(SocksReply.SUCCEEDED, host, 1)


def connecting(extra: bytes = b"") -> SocksHandshake:
    shake = SocksHandshake()
    effects = shake.receive(HELLO + request(3, domain(b"payments"), 80) + extra)
    assert isinstance(effects[-1], SocksConnect)
    return shake


def test_success_keeps_the_bytes_the_client_sent_early() -> None:
    shake = connecting(b"GET / HTTP/1.1\r\n")
    assert shake.receive(b"Host: payments\r\n\r\n") == []
    assert shake.reply(SocksReply.SUCCEEDED, "127.0.0.1", 41234)[:2] == b"\x05\x00"
    assert shake.trailing == b"GET / HTTP/1.1\r\nHost: payments\r\n\r\n"


def test_trailing_is_empty_when_the_client_waited() -> None:
    shake = connecting()
    shake.reply(SocksReply.SUCCEEDED)
    assert shake.trailing == b""


@pytest.mark.parametrize("code", [SocksReply.HOST_UNREACHABLE, SocksReply.CONNECTION_REFUSED,
                                  SocksReply.GENERAL_FAILURE])
def test_a_failure_reply_closes_the_handshake(code: SocksReply) -> None:
    shake = connecting()
    assert shake.reply(code) == bytes([5, code, 0]) + FAILED_BOUND
    with pytest.raises(LocalProtocolError):
        shake.receive(b"more")
    with pytest.raises(LocalProtocolError):
        _ = shake.trailing


def test_misuse_by_the_shell_is_our_protocol_error() -> None:
    shake = SocksHandshake()
    with pytest.raises(LocalProtocolError):
        shake.reply(SocksReply.SUCCEEDED)  # nothing was asked yet
    with pytest.raises(LocalProtocolError):
        _ = shake.trailing
    shake = connecting()
    shake.reply(SocksReply.SUCCEEDED)
    with pytest.raises(LocalProtocolError):
        shake.receive(b"raw bytes belong to the splice")
    with pytest.raises(LocalProtocolError):
        shake.reply(SocksReply.SUCCEEDED)


def test_after_a_refusal_nothing_more_is_parsed() -> None:
    shake = SocksHandshake()
    assert [type(e) for e in shake.receive(b"\x05\x01\x02" + HELLO)] == [SocksRefuse]
    with pytest.raises(LocalProtocolError):
        shake.receive(HELLO)


hosts = st.one_of(
    st.ip_addresses(v=4).map(lambda ip: (1, ip.packed)),
    st.ip_addresses(v=6).map(lambda ip: (4, ip.packed)),
    st.binary(min_size=1, max_size=255).filter(lambda b: all(0x21 <= c <= 0x7E for c in b))
    .map(lambda name: (3, domain(name))),
)
valid_wire = st.builds(
    lambda methods, host, port, command, early: (
        bytes([5, len(methods)]) + methods + request(host[0], host[1], port, command) + early),
    st.binary(max_size=8).map(lambda m: m + b"\x00"),
    hosts, st.integers(0, 65535), st.sampled_from([1, 1, 2, 3]), st.binary(max_size=50))


def feed_in_chunks(wire: bytes, cuts: list[int]) -> tuple[list[SocksEffect], bytes | None]:
    """What the shell sees: effects until a refusal, and the trailing bytes on success."""
    shake = SocksHandshake()
    effects: list[SocksEffect] = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)]):
        effects += shake.receive(wire[start:end])
        if effects and isinstance(effects[-1], SocksRefuse):
            return effects, None
    if not effects or not isinstance(effects[-1], SocksConnect):
        return effects, None
    shake.reply(SocksReply.SUCCEEDED, "127.0.0.1", 1)
    return effects, shake.trailing


@given(valid_wire, st.data())
def test_any_chunking_of_valid_input_gives_the_same_result(wire: bytes, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=12)))
    assert feed_in_chunks(wire, cuts) == feed_in_chunks(wire, [])


@given(valid_wire)
def test_valid_input_is_answered_in_full(wire: bytes) -> None:
    effects, trailing = feed_in_chunks(wire, [])
    command = wire[2 + wire[1] + 1]
    assert effects[0] == CHOSE_NO_AUTH
    assert len(effects) == 2
    if command == 1:
        assert isinstance(effects[1], SocksConnect)
        assert trailing is not None and wire.endswith(trailing)
    else:
        assert isinstance(effects[1], SocksRefuse)
        assert effects[1].data[1] == SocksReply.COMMAND_NOT_SUPPORTED


@settings(max_examples=1000)
@given(st.binary(max_size=300), st.data())
def test_garbage_never_raises_anything_but_the_peers_protocol_error(
        garbage: bytes, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(garbage)), max_size=6)))
    try:
        feed_in_chunks(garbage, cuts)
    except RemoteProtocolError:
        pass


@settings(max_examples=300)
@given(st.sampled_from([HELLO, HELLO + b"\x05\x01\x00"]), st.binary(max_size=300))
def test_garbage_after_a_valid_prefix_is_handled_too(prefix: bytes, garbage: bytes) -> None:
    try:
        feed_in_chunks(prefix + garbage, [len(prefix)])
    except RemoteProtocolError:
        pass
