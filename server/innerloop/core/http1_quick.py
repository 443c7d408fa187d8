"""The common shape of an HTTP/1.1 message, read without h11 where h11 reads it the same.

h11 reads a small head in ~50-60 µs on a small VM: more than a spliced round trip costs the
agent. Most messages are a request head without a body or an answer with a `Content-Length`:
one C regex each recognises that shape, and says None for anything else (a fold, a bare LF, a
byte h11 may read otherwise, a body, `Transfer-Encoding`, `Connection` other than keep-alive,
`Upgrade`, `Expect`, an interim answer, a head cut across reads), which h11 then reads. What
they accept, h11 reads the same: a hypothesis test holds them to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_VALUE = rb"(?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?"
_FIELDS = rb"((?:" + _TOKEN + rb":[ \t]*" + _VALUE + rb"[ \t]*\r\n)*)\r\n"
_REQUEST = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/1\.1\r\n" + _FIELDS)
_ANSWER = re.compile(rb"HTTP/1\.1 ([2-5][0-9][0-9])(?: [\t\x20-\x7e\x80-\xff]*)?\r\n" + _FIELDS)
_FIELD = re.compile(rb"(" + _TOKEN + rb"):[ \t]*(" + _VALUE + rb")[ \t]*\r\n")
_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*([0-9]{1,18})[ \t]*\r\n")
_KEEP_ALIVE = re.compile(rb"\r\nconnection:[ \t]*keep-alive[ \t]*\r\n")
MAX_HEAD = 8 * 1024
"""Longer heads are rare: h11 reads them (and applies its own limits)."""
_NOT_QUICK = re.compile(rb"\r\n(?:content-length|transfer-encoding|upgrade|expect):")


@dataclass(slots=True)
class QuickRequest:
    """A whole request head without a body, as h11 would read it (names as sent)."""

    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]


def quick_request(data: bytes) -> QuickRequest | None:
    """``data`` is exactly one HTTP/1.1 request head of that shape, with no body, no framing
    header, no `Upgrade`/`Expect`, one `Host` and at most `Connection: keep-alive`; else None."""
    if len(data) > MAX_HEAD or not data.endswith(b"\r\n\r\n"):
        return None
    head = _REQUEST.fullmatch(data)
    if head is None or head.group(1) == b"CONNECT":
        return None
    fields = b"\r\n" + head.group(3).lower()  # each field's name follows a CRLF
    if fields.count(b"\r\nhost:") != 1 or _NOT_QUICK.search(fields) is not None:
        return None
    connection = fields.count(b"\r\nconnection:")
    if connection and (connection > 1 or _KEEP_ALIVE.search(fields) is None):
        return None
    return QuickRequest(head.group(1), head.group(2), _FIELD.findall(head.group(3)))


def quick_answer(data: bytes, method: bytes) -> int | None:
    """The length of the whole answer (head and body) that ``data`` starts, when its head is
    all in ``data`` and has that shape: HTTP/1.1, a final status, one `Content-Length` (none
    needed for HEAD, 204, 304), no `Transfer-Encoding`, at most `Connection: keep-alive`.
    None: let h11 follow it."""
    end = data.find(b"\r\n\r\n", 0, MAX_HEAD)
    if end < 0:
        return None
    end += 4
    head = _ANSWER.fullmatch(data, 0, end)
    if head is None:
        return None
    fields = b"\r\n" + head.group(2).lower()
    if b"\r\ntransfer-encoding:" in fields:
        return None
    connection = fields.count(b"\r\nconnection:")
    if connection and (connection > 1 or _KEEP_ALIVE.search(fields) is None):
        return None
    lengths = fields.count(b"\r\ncontent-length:")
    length = _LENGTH.search(fields) if lengths == 1 else None
    if lengths and length is None:
        return None  # several, or not a number: h11 says what that is
    if method == b"HEAD" or head.group(1) in (b"204", b"304"):
        return end
    return None if length is None else end + int(length.group(1))
