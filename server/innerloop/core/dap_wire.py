"""DAP on the wire: Content-Length framing, the checks the proxy relies on, and message builders.

"Content-Length: N\r\n\r\n" + N bytes of UTF-8 JSON. Values in, values out: the asyncio shell
(`innerloop.dap.wire`) only moves the bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from innerloop.core.errors import LocalProtocolError, RemoteProtocolError

Message = dict[str, Any]
"""One decoded DAP message (request, response or event)."""

MessageKind = Literal["request", "response", "event"]
_KINDS: tuple[MessageKind, ...] = ("request", "response", "event")

MAX_HEADER_BYTES = 8 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
_HEADER_END = b"\r\n\r\n"


class DapParser:
    """Incremental decoder: feed it bytes as they arrive, get whole messages back."""

    def __init__(self, max_body: int = MAX_BODY_BYTES) -> None:
        self._buf = bytearray()
        self._body_len: int | None = None
        self._max_body = max_body

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        out: list[Message] = []
        while True:
            if self._body_len is None:
                end = self._buf.find(_HEADER_END)
                if end < 0:
                    if len(self._buf) > MAX_HEADER_BYTES:
                        raise RemoteProtocolError("DAP header section too long")
                    return out
                self._body_len = _content_length(bytes(self._buf[:end]), self._max_body)
                del self._buf[: end + len(_HEADER_END)]
            if len(self._buf) < self._body_len:
                return out
            body = bytes(self._buf[: self._body_len])
            del self._buf[: self._body_len]
            self._body_len = None
            out.append(decode_body(body))

    def eof(self) -> None:
        """The peer closed the stream: complain if it stopped in the middle of a message."""
        if self._buf or self._body_len is not None:
            raise RemoteProtocolError("DAP stream ended inside a message")


def _content_length(header: bytes, max_body: int) -> int:
    try:
        text = header.decode("ascii")
    except UnicodeDecodeError:
        raise RemoteProtocolError("DAP header is not ASCII") from None
    length: int | None = None
    for line in text.split("\r\n"):
        name, sep, value = line.partition(":")
        if not sep:
            raise RemoteProtocolError(f"malformed DAP header line {line!r}")
        if name.strip().lower() != "content-length":
            continue
        value = value.strip()
        if length is not None:
            raise RemoteProtocolError("duplicate Content-Length header")
        if not value.isdigit():  # the header is ASCII, so only 0-9 pass
            raise RemoteProtocolError(f"bad Content-Length {value!r}")
        length = int(value)
    if length is None:
        raise RemoteProtocolError("DAP header without Content-Length")
    if length > max_body:
        raise RemoteProtocolError(f"DAP message of {length} bytes exceeds {max_body}")
    return length


def decode_body(body: bytes) -> Message:
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RemoteProtocolError(f"DAP body is not UTF-8 JSON: {exc}") from None
    return check_message(obj)


_REQUIRED: dict[str, tuple[tuple[str, type], ...]] = {
    "request": (("command", str),),
    "event": (("event", str),),
    "response": (("request_seq", int), ("success", bool), ("command", str)),
}


def check_message(obj: object) -> Message:
    """Validate the fields the proxy relies on; anything else passes through untouched."""
    if not isinstance(obj, dict):
        raise RemoteProtocolError("DAP message is not a JSON object")
    if not is_int(obj.get("seq")):
        raise RemoteProtocolError("DAP message without an integer seq")
    kind = obj.get("type")
    required = _REQUIRED.get(kind) if isinstance(kind, str) else None
    if required is None:
        raise RemoteProtocolError(f"unknown DAP message type {kind!r}")
    for key, typ in required:
        value = obj.get(key)
        ok = is_int(value) if typ is int else isinstance(value, typ)
        if not ok:
            raise RemoteProtocolError(f"DAP {kind} without a valid {key!r}")
    return obj


def is_int(value: object) -> bool:
    """A JSON integer (Python's bool is an int; JSON's true is not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def message_kind(msg: Message) -> MessageKind:
    """The type of a message that passed `check_message`, as a closed set for `match`."""
    kind = msg["type"]
    for known in _KINDS:
        if kind == known:
            return known
    raise LocalProtocolError(f"unchecked DAP message type {kind!r}")


def encode(msg: Message) -> bytes:
    try:
        body = json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise LocalProtocolError(f"cannot encode DAP message: {exc}") from None
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


# Building messages. seq is 0 here: SeqMap stamps every message on its way out.


def response(request: Message, body: Mapping[str, Any] | None = None) -> Message:
    msg: Message = {
        "type": "response",
        "seq": 0,
        "request_seq": request["seq"],
        "command": request["command"],
        "success": True,
    }
    if body is not None:
        msg["body"] = dict(body)
    return msg


def error_response(request: Message, text: str) -> Message:
    """A failed response whose one line the client shows to the user."""
    msg = response(request, {"error": {"id": 1, "format": text, "showUser": True}})
    msg["success"] = False
    msg["message"] = text
    return msg


def event(name: str, body: Mapping[str, Any] | None = None) -> Message:
    msg: Message = {"type": "event", "seq": 0, "event": name}
    if body is not None:
        msg["body"] = dict(body)
    return msg


def output_event(text: str) -> Message:
    """A line in the client's debug console, telling the user what innerloop is doing."""
    return event("output", {"category": "console", "output": f"innerloop: {text}\n"})
