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
from collections.abc import Callable

from innerloop.core.filters import RequestFilter, RequestParts, request_path

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


def _field_but(names: bytes) -> bytes:
    """A field line whose name is none of ``names`` (any case)."""
    return rb"(?!(?i:" + names + rb"):)" + _TOKEN + rb":[ \t]*" + _VALUE + rb"[ \t]*\r\n"


# The commonest shapes in one match each (the rest as above): no `Connection` field at all
_PLAIN_FIELD = _field_but(rb"content-length|transfer-encoding|upgrade|expect|connection|host")
_PLAIN_REQUEST = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/1\.1\r\n(?:"
                            + _PLAIN_FIELD + rb")*(?i:host):[ \t]*" + _VALUE
                            + rb"[ \t]*\r\n(?:" + _PLAIN_FIELD + rb")*\r\n")
_LENGTH_FIELD = _field_but(rb"content-length|transfer-encoding|connection")
_LENGTH_ANSWER = re.compile(rb"HTTP/1\.1 ([2-5][0-9][0-9])(?: [\t\x20-\x7e\x80-\xff]*)?\r\n(?:"
                            + _LENGTH_FIELD + rb")*(?i:content-length):[ \t]*([0-9]{1,18})"
                            rb"[ \t]*\r\n(?:" + _LENGTH_FIELD + rb")*\r\n")


class QuickRequest:
    """A whole request head without a body, as h11 would read it (names as sent)."""

    __slots__ = ("_headers", "data", "method", "target")

    def __init__(self, method: bytes, target: bytes, data: bytes) -> None:
        self.method = method
        self.target = target
        self.data = data  # the head as it came
        self._headers: list[tuple[bytes, bytes]] | None = None

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """Read when asked: an exact header filter reads the bytes instead."""
        if self._headers is None:
            self._headers = _FIELD.findall(self.data, self.data.index(b"\r\n") + 2)
        return self._headers


def quick_request(data: bytes) -> QuickRequest | None:
    """``data`` is exactly one HTTP/1.1 request head of that shape, with no body, no framing
    header, no `Upgrade`/`Expect`, one `Host` and at most `Connection: keep-alive`; else None."""
    if len(data) > MAX_HEAD:
        return None
    plain = _PLAIN_REQUEST.fullmatch(data)
    if plain is not None:
        return None if plain.group(1) == b"CONNECT" else QuickRequest(
            plain.group(1), plain.group(2), data)
    if not data.endswith(b"\r\n\r\n"):
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
    return QuickRequest(head.group(1), head.group(2), data)


Matcher = Callable[[QuickRequest], bool]
_MATCHERS: dict[int, tuple[RequestFilter, Matcher]] = {}  # by the filter's id


def quick_matcher(flt: RequestFilter) -> Matcher:
    """What ``flt.matches`` says of a quick request: an exact header condition is one search
    of the head's bytes (a quick head has one field a line, each after a CRLF, its value
    stripped as h11 strips it); the other conditions, if any, go to ``flt.matches`` with only
    the headers they name. A hypothesis test holds it to ``flt.matches``."""
    known = _MATCHERS.get(id(flt))
    if known is not None and known[0] is flt:
        return known[1]
    if len(_MATCHERS) >= 256:  # filters of released claims
        _MATCHERS.clear()
    matcher = _MATCHERS[id(flt)] = flt, _matcher(flt)
    return matcher[1]


def _matcher(flt: RequestFilter) -> Matcher:
    searches = []
    for cond in flt.headers:
        if cond.regex:
            continue
        try:
            value = cond.value.encode("latin-1")
        except UnicodeEncodeError:
            return _never  # no head (read as latin-1) carries it
        if value != value.strip(b" \t"):
            return _never  # h11 strips every value
        searches.append(re.compile(b"\r\n(?i:" + re.escape(cond.name.encode()) + b"):[ \t]*"
                                   + re.escape(value) + b"[ \t]*\r\n").search)
    if len(searches) == len(flt.headers) and flt.method is None and flt.path is None \
            and flt.path_prefix is None and flt.path_regex is None:
        def exact(request: QuickRequest) -> bool:
            data = request.data
            for search in searches:
                if search(data) is None:
                    return False
            return True
        return exact
    names = {cond.name.encode() for cond in flt.headers}

    def parts(request: QuickRequest) -> bool:
        data = request.data
        for search in searches:
            if search(data) is None:
                return False
        values: dict[str, list[str]] = {}
        for name, value in request.headers:
            if (name := name.lower()) in names:
                values.setdefault(name.decode(), []).append(value.decode("latin-1"))
        return flt.matches(RequestParts(request.method.decode().upper(),
                                        request_path(request.target), values))
    return parts


def _never(request: QuickRequest) -> bool:
    return False


def quick_answer(data: bytes, method: bytes) -> int | None:
    """The length of the whole answer (head and body) that ``data`` starts, when its head is
    all in ``data`` and has that shape: HTTP/1.1, a final status, one `Content-Length` (none
    needed for HEAD, 204, 304), no `Transfer-Encoding`, at most `Connection: keep-alive`.
    None: let h11 follow it."""
    plain = _LENGTH_ANSWER.match(data)
    if plain is not None and plain.end() <= MAX_HEAD:
        if method == b"HEAD" or plain.group(1) in (b"204", b"304"):
            return plain.end()
        return plain.end() + int(plain.group(2))
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
