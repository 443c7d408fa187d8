"""DAP framing and message builders (innerloop.core.dap_wire)."""

from __future__ import annotations

import json

import pytest
from dap_messages import ev, frame, req, resp
from hypothesis import given
from hypothesis import strategies as st
from innerloop.core import dap_wire as r
from innerloop.core.errors import LocalProtocolError, RemoteProtocolError


def test_parser_splits_and_joins_messages_across_chunks() -> None:
    a, b = req(1, "initialize"), ev("output", output="héllo")
    data = r.encode(a) + r.encode(b)
    parser = r.DapParser()
    got: list[r.Message] = []
    for i in range(len(data)):
        got += parser.feed(data[i : i + 1])
    assert got == [a, b]
    parser.eof()


@given(st.lists(st.binary(max_size=40), max_size=8), st.integers(1, 64))
def test_parser_reassembles_any_chunking(payloads: list[bytes], chunk: int) -> None:
    msgs = [ev("output", output=p.hex()) for p in payloads]
    data = b"".join(r.encode(m) for m in msgs)
    parser = r.DapParser()
    got = [m for i in range(0, len(data), chunk) for m in parser.feed(data[i : i + chunk])]
    assert got == msgs


def test_parser_ignores_other_headers_and_header_case() -> None:
    body = json.dumps(ev("x")).encode()
    data = b"Content-Type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    assert r.DapParser().feed(data) == [ev("x")]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", "duplicate"),
        (b"Content-Length: -1\r\n\r\n", "bad Content-Length"),
        (b"Content-Length: 1e3\r\n\r\n", "bad Content-Length"),
        (b"X-Other: 1\r\n\r\n", "without Content-Length"),
        (b"garbage\r\n\r\n", "malformed DAP header"),
        ("Content-Lèngth: 2\r\n\r\n{}".encode(), "not ASCII"),
        (b"Content-Length: 99999\r\n\r\n", "exceeds"),
        (b"x" * (r.MAX_HEADER_BYTES + 1), "too long"),
        (b"Content-Length: 4\r\n\r\n\xff\xfe{}", "not UTF-8 JSON"),
        (b"Content-Length: 3\r\n\r\n{x}", "not UTF-8 JSON"),
        (frame([1]), "not a JSON object"),
        (frame({"type": "event", "event": "x"}), "integer seq"),
        (frame({"seq": True, "type": "event", "event": "x"}), "integer seq"),
        (frame({"seq": 1, "type": "notification"}), "unknown DAP message type"),
        (frame({"seq": 1, "type": 5}), "unknown DAP message type"),
        (frame({"seq": 1, "type": "request"}), "valid 'command'"),
        (frame({"seq": 1, "type": "event", "event": 3}), "valid 'event'"),
        (frame({**resp(1, "next"), "request_seq": "1"}), "valid 'request_seq'"),
        (frame({**resp(1, "next"), "success": 1}), "valid 'success'"),
        (frame({**resp(1, "next"), "command": None}), "valid 'command'"),
    ],
)
def test_parser_rejects_malformed_input(data: bytes, problem: str) -> None:
    with pytest.raises(RemoteProtocolError, match=problem):
        r.DapParser(max_body=1000).feed(data)


@pytest.mark.parametrize("tail", [b"Content-Len", b"Content-Length: 5\r\n\r\n{}"])
def test_eof_inside_a_message_is_the_peers_error(tail: bytes) -> None:
    parser = r.DapParser()
    parser.feed(tail)
    with pytest.raises(RemoteProtocolError, match="ended inside"):
        parser.eof()


def test_encode_refuses_what_json_cannot_carry() -> None:
    with pytest.raises(LocalProtocolError):
        r.encode({"seq": 1, "type": "event", "event": "x", "body": {1, 2}})


def test_error_response_carries_one_user_line() -> None:
    msg = r.error_response(req(4, "launch"), "fix it")
    assert msg == {
        "type": "response",
        "seq": 0,
        "request_seq": 4,
        "command": "launch",
        "success": False,
        "message": "fix it",
        "body": {"error": {"id": 1, "format": "fix it", "showUser": True}},
    }


def test_output_event_goes_to_the_console() -> None:
    assert r.output_event("hi")["body"] == {"category": "console", "output": "innerloop: hi\n"}
    assert "body" not in r.event("initialized")
