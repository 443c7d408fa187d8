"""The quick reading of common HTTP/1.1 heads says None or exactly what h11 says."""

from __future__ import annotations

import h11
from hypothesis import example, given, reject
from hypothesis import strategies as st
from innerloop.core.errors import UserError
from innerloop.core.filters import HeaderMatch, RequestFilter, header_match, request_parts
from innerloop.core.http1_quick import quick_answer, quick_matcher, quick_request

_NAMES = st.sampled_from([b"Host", b"host", b"x-dev", b"X-Dev", b"accept", b"content-length",
                          b"Content-Length", b"transfer-encoding", b"connection", b"Connection",
                          b"upgrade", b"expect", b"x dev", b"", b"x-dev ", b"content-length "])
_VALUES = st.sampled_from([b"me", b" me ", b"a b", b"\tx", b"keep-alive", b"Keep-Alive",
                           b"close", b"chunked", b"5", b"0", b"12", b"-1", b"1e3", b"", b"\xe9",
                           b"100-continue", b"a\x00b", b"a\x7fb", b"a\x0bb", b"websocket"])
_LINE_ENDS = st.sampled_from([b"\r\n"] * 8 + [b"\n", b"\r", b"\r\n "])


@st.composite
def heads(draw: st.DrawFn, first_lines: st.SearchStrategy[bytes]) -> bytes:
    first = draw(first_lines) + draw(st.sampled_from([b"Host: h\r\n"] * 3 + [b""]))
    fields = draw(st.lists(st.tuples(_NAMES, st.sampled_from([b":", b": ", b" :", b":  "]),
                                     _VALUES, _LINE_ENDS), max_size=6))
    body = draw(st.sampled_from([b"", b"hello", b"0\r\n\r\n"]))
    return (first + b"".join(n + c + v + e for n, c, v, e in fields) + b"\r\n"
            + body + draw(st.sampled_from([b"", b"GET / HTTP/1.1\r\n\r\n"])))


@st.composite
def common_heads(draw: st.DrawFn, first_lines: st.SearchStrategy[bytes],
                 common: bytes) -> bytes:
    """Mostly well-formed heads with one `Host` (the shapes read in one match), now and then
    with a field, a line end or bytes after the head that make them otherwise."""
    names = st.sampled_from([b"x-dev", b"Accept", b"content-length", b"Content-Length"] * 3 + [
        b"Connection", b"Transfer-Encoding", b"content-lengthy", b"hostx", b"x-connection",
        b"Expect", b"upgrade", b"Host"])
    values = st.sampled_from([b"me", b"a b", b"2", b"10", b"0", b"keep-alive", b"close",
                              b"chunked", b"", b"\xe9"])
    fields = draw(st.lists(st.tuples(names, st.sampled_from([b": ", b":", b":\t"]), values,
                                     st.sampled_from([b"\r\n"] * 20 + [b"\n", b" \r\n"])),
                           max_size=4))
    fields.insert(draw(st.integers(0, len(fields))), (b"host", b": ", b"h", b"\r\n"))
    first = draw(st.sampled_from([common] * 6 + [draw(first_lines)]))
    return (first + b"".join(n + c + v + e for n, c, v, e in fields) + b"\r\n"
            + draw(st.sampled_from([b""] * 4 + [b"ok", b"0123456789"])))


_REQUEST_LINES = st.sampled_from([
    b"GET / HTTP/1.1\r\n", b"get /a?b=1 HTTP/1.1\r\n", b"POST /api HTTP/1.1\r\n",
    b"HEAD /x HTTP/1.1\r\n", b"GET / HTTP/1.0\r\n", b"CONNECT h:1 HTTP/1.1\r\n",
    b"GET /a b HTTP/1.1\r\n", b"GET  / HTTP/1.1\r\n", b"G\x00T / HTTP/1.1\r\n",
    b"GET /\xe9 HTTP/1.1\r\n", b"GET / HTTP/1.1\n", b"\r\nGET / HTTP/1.1\r\n"])
_STATUS_LINES = st.sampled_from([
    b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 200\r\n", b"HTTP/1.1 404 Not Found\r\n",
    b"HTTP/1.1 204 No Content\r\n", b"HTTP/1.1 304 Not Modified\r\n",
    b"HTTP/1.1 100 Continue\r\n", b"HTTP/1.1 101 Switching\r\n", b"HTTP/1.0 200 OK\r\n",
    b"HTTP/1.1 200 \xe9\r\n", b"HTTP/1.1 2000 OK\r\n", b"HTTP/1.1 200 OK\n"])


def _h11_request(data: bytes) -> tuple[h11.Request, bool] | None:
    """What h11 reads: the request, and whether it is the whole message (no body)."""
    server = h11.Connection(h11.SERVER)
    server.receive_data(data)
    try:
        request = server.next_event()
        if not isinstance(request, h11.Request):
            return None
        whole = server.next_event() == h11.EndOfMessage()
    except h11.RemoteProtocolError:
        return None
    server.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
    server.send(h11.EndOfMessage())
    return request, whole and server.their_state is h11.DONE  # DONE: kept alive


@given(data=st.one_of(heads(_REQUEST_LINES),
                      common_heads(_REQUEST_LINES, b"GET /a HTTP/1.1\r\n")))
@example(data=b"GET /api HTTP/1.1\r\nHost: h\r\nX-Dev:  a b \r\n\r\n")
def test_a_quick_request_is_what_h11_reads(data: bytes) -> None:
    quick = quick_request(data)
    if quick is None:
        return
    read = _h11_request(data)
    assert read is not None, data
    request, whole = read
    assert whole and not server_trailing(data)
    assert (quick.method, quick.target) == (request.method, request.target)
    assert quick.headers == list(request.headers.raw_items())


def server_trailing(data: bytes) -> bytes:
    server = h11.Connection(h11.SERVER)
    server.receive_data(data)
    server.next_event()
    server.next_event()
    return server.trailing_data[0]


def test_common_requests_are_quick() -> None:
    quick = quick_request(b"GET /api/orders?x=1 HTTP/1.1\r\nhost: orders\r\nx-dev: me\r\n"
                          b"Connection: keep-alive\r\n\r\n")
    assert quick is not None
    assert quick.method == b"GET" and quick.target == b"/api/orders?x=1"
    assert quick.headers == [(b"host", b"orders"), (b"x-dev", b"me"),
                             (b"Connection", b"keep-alive")]
    for other in (b"GET / HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\n",
                  b"POST / HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n",
                  b"GET / HTTP/1.1\r\nhost: h\r\n\r\nGET / HTTP/1.1\r\nhost: h\r\n\r\n",
                  b"GET / HTTP/1.1\r\nhost: h\r\n\r",
                  b"GET / HTTP/1.1\r\n\r\n"):
        assert quick_request(other) is None, other


@given(data=st.one_of(heads(_STATUS_LINES),
                      common_heads(_STATUS_LINES, b"HTTP/1.1 200 OK\r\n")),
       method=st.sampled_from([b"GET", b"HEAD", b"POST"]),
       cut=st.integers(0, 200))
@example(data=b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", method=b"GET", cut=200)
def test_a_quick_answer_ends_where_h11_ends_it(data: bytes, method: bytes, cut: int) -> None:
    data = data[:cut]
    length = quick_answer(data, method)
    if length is None:
        return
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target="/", headers=[("host", "h")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    read = 0
    while True:
        event = client.next_event()  # h11 never fails on what quick_answer accepts
        if event is h11.NEED_DATA:
            assert read < length  # the answer goes on past data, as quick_answer says
            assert len(data) < length
            return
        if isinstance(event, h11.Response):
            assert 200 <= event.status_code
        if isinstance(event, h11.EndOfMessage):
            break
    assert client.their_state is h11.DONE  # kept alive
    assert len(data) - len(client.trailing_data[0]) == length


def test_common_answers_are_quick() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
    assert quick_answer(ok, b"GET") == len(ok)
    assert quick_answer(ok[:-1], b"GET") == len(ok)  # the body follows
    assert quick_answer(ok[:-2], b"HEAD") == len(ok) - 2
    assert quick_answer(b"HTTP/1.1 304 Not Modified\r\n\r\n", b"GET") == 29
    for other in (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                  b"HTTP/1.1 200 OK\r\n\r\n",  # read to the close
                  b"HTTP/1.1 100 Continue\r\n\r\n",
                  b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                  b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n",
                  b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"):
        assert quick_answer(other, b"GET") is None, other


_FILTER_HEADERS = st.lists(st.tuples(
    st.sampled_from(["x-dev", "X-Dev", "accept", "x-other"]),
    st.sampled_from(["me", "a b", "", "\xe9", "\u20ac", " me", "~^m", "~e$", "~"])),
    max_size=2, unique_by=lambda h: h[0].lower())


@st.composite
def filters(draw: st.DrawFn) -> RequestFilter:
    try:
        return RequestFilter(
            headers=tuple(header_match(n, v) for n, v in draw(_FILTER_HEADERS)),
            path=draw(st.sampled_from([None, "/api"])),
            path_prefix=draw(st.sampled_from([None, "/a", "/api/"])),
            path_regex=draw(st.sampled_from([None, "b$", "^/a"])),
            method=draw(st.sampled_from([None, "GET", "post"])))
    except UserError:  # a path no request can have
        reject()


@st.composite
def quick_heads(draw: st.DrawFn) -> bytes:
    first = b"%s %s HTTP/1.1\r\nhost: h\r\n" % (
        draw(st.sampled_from([b"GET", b"get", b"POST"])),
        draw(st.sampled_from([b"/", b"/api", b"/api?x=1", b"/apib", b"/a/b",
                              b"http://h/api?q", b"*"])))
    fields = draw(st.lists(st.tuples(
        st.sampled_from([b"x-dev", b"X-DEV", b"accept", b"x-dev2", b"x-other"]),
        st.sampled_from([b":", b": ", b":\t", b":  "]),
        st.sampled_from([b"me", b"me ", b"a b", b"a  b", b"", b"\xe9", b"mee", b"xme", b"M"])),
        max_size=4))
    return first + b"".join(n + c + v + b"\r\n" for n, c, v in fields) + b"\r\n"


@given(data=quick_heads(), flt=filters())
@example(data=b"GET / HTTP/1.1\r\nhost: h\r\nX-Dev:  a b \r\n\r\n",
         flt=RequestFilter(headers=(HeaderMatch("x-dev", "a b"),)))
def test_a_quick_match_is_what_the_filter_says(data: bytes, flt: RequestFilter) -> None:
    quick = quick_request(data)
    assert quick is not None, data
    assert quick_matcher(flt)(quick) == flt.matches(
        request_parts(quick.method, quick.target, quick.headers)), (data, flt)
