"""Request filters: matching, the canonical JSON, overlap (never False when both can match)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from innerloop.core.errors import UserError
from innerloop.core.filters import (
    EVERYTHING,
    AppProtocol,
    HeaderMatch,
    Mode,
    RequestFilter,
    encode_filter,
    filter_from_json,
    filter_to_json,
    matches,
    may_overlap,
    parse_filter,
    parse_header_flag,
    protocol_hint,
    request_path,
    route_protocol,
)


def flt(**kw: object) -> RequestFilter:
    return filter_from_json(kw)


GET, POST = "GET", "POST"


@pytest.mark.parametrize(("match", "method", "target", "headers", "expected"), [
    ({}, GET, "/", [], True),
    ({"headers": {"x-dev": "me"}}, GET, "/", [("X-Dev", "me")], True),
    ({"headers": {"x-dev": "me"}}, GET, "/", [("x-dev", "you")], False),
    ({"headers": {"x-dev": "me"}}, GET, "/", [], False),
    ({"headers": {"x-dev": "me"}}, GET, "/", [("x-dev", "you"), ("x-dev", "me")], True),
    ({"headers": {"X-DEV": "me"}}, GET, "/", [(b"x-dev", b"me")], True),
    ({"headers": {"x-dev": "me"}}, GET, "/", [("x-dev", "ME")], False),
    ({"headers": {"x-tenant": "~^acme-"}}, GET, "/", [("x-tenant", "acme-1")], True),
    ({"headers": {"x-tenant": "~^acme-"}}, GET, "/", [("x-tenant", "big-acme-1")], False),
    ({"headers": {"x-dev": "~"}}, GET, "/", [("x-dev", "")], True),  # present, any value
    ({"headers": {"x-a": "1", "x-b": "2"}}, GET, "/", [("x-a", "1")], False),
    ({"headers": {"x-a": "1", "x-b": "2"}}, GET, "/", [("x-b", "2"), ("x-a", "1")], True),
    ({"path": "/a"}, GET, "/a?x=1", [], True),
    ({"path": "/a"}, GET, "/a/b", [], False),
    ({"pathPrefix": "/api"}, GET, b"/api/orders", [], True),
    ({"pathPrefix": "/api"}, GET, "/ap", [], False),
    ({"pathPrefix": "/api"}, GET, "http://h:80/api/x?q", [], True),
    ({"pathRegex": "^/o/[0-9]+$"}, GET, "/o/12?full=1", [], True),
    ({"pathRegex": "^/o/[0-9]+$"}, GET, "/o/x", [], False),
    ({"method": "post"}, b"POST", "/", [], True),
    ({"method": "POST"}, GET, "/", [], False),
    ({"method": "POST", "pathPrefix": "/api", "headers": {"x-dev": "me"}},
     POST, "/api", [("x-dev", "me")], True),
    ({"method": "POST", "pathPrefix": "/api", "headers": {"x-dev": "me"}},
     POST, "/other", [("x-dev", "me")], False),
])
def test_matches(match: dict[str, object], method: str, target: str,
                 headers: list[tuple[str, str]], expected: bool) -> None:
    assert matches(filter_from_json(match), method, target, headers) is expected


def test_matches_reads_a_header_generator_once() -> None:
    headers = ((n, v) for n, v in [("x-a", "1"), ("x-b", "2")])
    assert matches(flt(headers={"x-a": "1", "x-b": "2"}), GET, "/", headers)


@pytest.mark.parametrize(("target", "path"), [
    ("/a?b=c", "/a"), ("/", "/"), ("http://host", "/"), ("https://h/x/y?z", "/x/y"), ("*", "*"),
])
def test_request_path(target: str, path: str) -> None:
    assert request_path(target) == path


@pytest.mark.parametrize(("a", "b", "overlap"), [
    ({}, {"headers": {"x-dev": "me"}}, True),
    ({"headers": {"x-dev": "me"}}, {}, True),
    ({"headers": {"x-dev": "me"}}, {"headers": {"x-dev": "you"}}, False),
    ({"headers": {"x-dev": "me"}}, {"headers": {"x-dev": "me"}}, True),
    ({"headers": {"x-dev": "me"}}, {"headers": {"x-other": "you"}}, True),
    ({"headers": {"x-dev": "me"}}, {"headers": {"x-dev": "~^m"}}, True),
    ({"headers": {"x-dev": "~^m"}}, {"headers": {"x-dev": "you"}}, False),
    ({"headers": {"x-dev": "you"}}, {"headers": {"x-dev": "~^m"}}, False),
    ({"headers": {"x-dev": "~^m"}}, {"headers": {"x-dev": "~^y"}}, True),  # regexes: maybe
    ({"method": "GET"}, {"method": "POST"}, False),
    ({"method": "GET"}, {"method": "get"}, True),
    ({"method": "GET"}, {"path": "/a"}, True),
    ({"path": "/a"}, {"path": "/b"}, False),
    ({"path": "/a"}, {"path": "/a"}, True),
    ({"path": "/api/x"}, {"pathPrefix": "/api"}, True),
    ({"pathPrefix": "/api"}, {"path": "/web"}, False),
    ({"pathPrefix": "/api"}, {"pathPrefix": "/web"}, False),
    ({"pathPrefix": "/api"}, {"pathPrefix": "/api/v2"}, True),
    ({"pathPrefix": "/api/v2"}, {"pathPrefix": "/api"}, True),
    ({"path": "/o/1"}, {"pathRegex": "^/o/[0-9]+$"}, True),
    ({"pathRegex": "^/o/[0-9]+$"}, {"path": "/o/x"}, False),
    ({"pathRegex": "^/a"}, {"pathPrefix": "/b"}, True),  # conservative
    ({"headers": {"x-dev": "me"}, "pathPrefix": "/a"},
     {"headers": {"x-dev": "me"}, "pathPrefix": "/b"}, False),
])
def test_may_overlap(a: dict[str, object], b: dict[str, object], overlap: bool) -> None:
    assert may_overlap(flt(**a), flt(**b)) is overlap
    assert may_overlap(flt(**b), flt(**a)) is overlap


def test_filters_are_normalized_and_compare_equal() -> None:
    one = RequestFilter(headers=(HeaderMatch("X-B", "2"), HeaderMatch("x-a", "1")), method="get")
    two = flt(headers={"x-a": "1", "x-b": "2"}, method="GET")
    assert one == two and hash(one) == hash(two)
    assert encode_filter(one) == '{"headers":{"x-a":"1","x-b":"2"},"method":"GET"}'
    assert EVERYTHING.is_empty and not one.is_empty


def test_canonical_json_round_trips() -> None:
    full = flt(headers={"x-dev": "me", "x-tenant": "~^acme-"}, path="/api/x",
               pathPrefix="/api", pathRegex="x$", method="POST")
    assert parse_filter(encode_filter(full)) == full
    assert filter_to_json(full)["headers"] == {"x-dev": "me", "x-tenant": "~^acme-"}
    assert encode_filter(EVERYTHING) == "{}"
    assert parse_filter("{}") == EVERYTHING
    assert filter_from_json(None) == EVERYTHING


def test_describe() -> None:
    assert EVERYTHING.describe() == "all requests"
    assert flt(headers={"x-t": "~^a"}, pathPrefix="/api", method="post").describe() == (
        "x-t=~^a path-prefix=/api method=POST")
    assert flt(path="/a", pathRegex="a").describe() == "path=/a path-regex=a"


@pytest.mark.parametrize(("obj", "message"), [
    ([], "match must be an object like"),
    ({"header": {}}, "match has unknown key 'header'"),
    ({"headers": ["x"]}, 'match: "headers" must map header names to values'),
    ({"headers": {"x-a": 1}}, 'match: "headers" must map'),
    ({"path": ""}, 'match: "path" must be a non-empty string'),
    ({"method": 3}, 'match: "method" must be a non-empty string'),
    ({"headers": {"bad name": "x"}}, "match: bad header name 'bad name'"),
    ({"headers": {"x-a": "~("}}, "match: bad regex '(' for header x-a: missing ), "),
    ({"headers": {"x-a": "a\nb"}}, "match: bad value 'a\\nb' for header x-a"),
    ({"path": "api"}, "match: bad path 'api' in a filter: it must start with /"),
    ({"pathPrefix": "api"}, "match: bad path prefix 'api'"),
    ({"pathRegex": "["}, "match: bad regex '[' for path"),
    ({"method": "GE T"}, "match: bad method 'GE T'"),
    ({"path": "/a", "pathPrefix": "/b"}, "match: path /a does not meet the filter's other"),
    ({"path": "/a", "pathRegex": "b"}, "match: path /a does not meet"),
])
def test_bad_filters_are_one_line(obj: object, message: str) -> None:
    with pytest.raises(UserError) as err:
        filter_from_json(obj)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value).replace("\\n", "")


def test_a_header_twice_is_refused() -> None:
    with pytest.raises(UserError, match="header x-a is in a filter twice"):
        RequestFilter(headers=(HeaderMatch("x-a", "1"), HeaderMatch("X-A", "2")))


@pytest.mark.parametrize("text", ["", "{", "[]", '{"path": 1}'])
def test_bad_wire_filters(text: str) -> None:
    with pytest.raises(UserError):
        parse_filter(text)


def test_header_flag() -> None:
    assert parse_header_flag("x-dev=me") == HeaderMatch("x-dev", "me")
    assert parse_header_flag(" x-t =~^a=b") == HeaderMatch("x-t", "^a=b", regex=True)
    assert parse_header_flag("x-empty=") == HeaderMatch("x-empty", "")
    for bad in ("x-dev", "=me"):
        with pytest.raises(UserError, match="bad --header"):
            parse_header_flag(bad)


def test_modes_and_protocols_parse() -> None:
    assert Mode.parse("mirror") is Mode.MIRROR and Mode.parse(Mode.ROUTE) is Mode.ROUTE
    assert AppProtocol.parse("h2") is AppProtocol.H2
    with pytest.raises(UserError, match='mode must be "route" or "mirror", got'):
        Mode.parse("copy")
    with pytest.raises(UserError, match="protocol must be one of auto|http1|h2|tcp, got 'x'"):
        AppProtocol.parse("x")


@pytest.mark.parametrize(("app_protocol", "name", "hint"), [
    (None, None, AppProtocol.AUTO),
    (None, "http", AppProtocol.AUTO),
    (None, "http-web", AppProtocol.AUTO),
    (None, "grpc", AppProtocol.H2),
    (None, "grpc-api", AppProtocol.H2),
    (None, "grpc-web", AppProtocol.HTTP1),
    (None, "h2c", AppProtocol.H2),
    (None, "tcp-db", AppProtocol.TCP),
    (None, "https", AppProtocol.TCP),
    (None, "web", AppProtocol.AUTO),
    ("kubernetes.io/h2c", "tcp", AppProtocol.H2),
    ("kubernetes.io/ws", None, AppProtocol.HTTP1),
    ("HTTP", "grpc", AppProtocol.AUTO),
    ("something", "grpc", AppProtocol.AUTO),
    ("", "grpc", AppProtocol.H2),
    ("mysql", None, AppProtocol.TCP),
])
def test_protocol_hint(app_protocol: str | None, name: str | None, hint: AppProtocol) -> None:
    assert protocol_hint(app_protocol, name) is hint


# --- properties: may_overlap is never False when some request matches both ------------------

NAMES = st.sampled_from(["x-a", "x-b", "x-c"])
VALUES = st.sampled_from(["", "a", "ab", "b", "ba", "acme-1"])
REGEXES = st.sampled_from(["", "^a", "b$", "^ab$", "a|b", "^acme-"])
PATHS = st.sampled_from(["/", "/a", "/a/b", "/ab", "/b", "/b/a", "/a/1"])
PATH_REGEXES = st.sampled_from(["^/a", "b$", "^/a/[0-9]$", "/"])
METHODS = st.sampled_from(["GET", "POST"])


@st.composite
def filters(draw: st.DrawFn) -> RequestFilter:
    headers = {}
    for name in draw(st.sets(NAMES, max_size=2)):
        headers[name] = ("~" + draw(REGEXES)) if draw(st.booleans()) else draw(VALUES)
    match = {
        "headers": headers,
        "path": draw(st.none() | PATHS),
        "pathPrefix": draw(st.none() | PATHS),
        "pathRegex": draw(st.none() | PATH_REGEXES),
        "method": draw(st.none() | METHODS),
    }
    try:
        return filter_from_json(match)
    except UserError:  # self-contradicting exact path: drop it
        match["path"] = None
        return filter_from_json(match)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, list[tuple[str, str]]]:
    names = draw(st.sets(NAMES))
    headers = [(name.upper() if draw(st.booleans()) else name, draw(VALUES)) for name in names]
    query = draw(st.sampled_from(["", "?q=1"]))
    return draw(METHODS), draw(PATHS) + query, headers


@given(filters(), filters(), requests())
def test_overlap_is_true_whenever_a_request_matches_both(
        a: RequestFilter, b: RequestFilter, req: tuple[str, str, list[tuple[str, str]]]) -> None:
    method, path, headers = req
    if matches(a, method, path, headers) and matches(b, method, path, headers):
        assert may_overlap(a, b)
    assert may_overlap(a, b) == may_overlap(b, a)


@given(filters())
def test_a_filter_overlaps_itself_and_everything(a: RequestFilter) -> None:
    assert may_overlap(a, a) and may_overlap(a, EVERYTHING)
    assert parse_filter(encode_filter(a)) == a


def test_route_protocol() -> None:
    me = flt(headers={"x-dev": "me"})
    assert route_protocol(None, None, "grpc", me, Mode.ROUTE, "s:80") is AppProtocol.H2
    assert route_protocol(AppProtocol.HTTP1, None, "tcp", me, Mode.ROUTE, "s") is (
        AppProtocol.HTTP1)
    assert route_protocol(None, "tcp", None, EVERYTHING, Mode.ROUTE, "s") is AppProtocol.TCP
    with pytest.raises(UserError, match=r"^s:5432/tcp-db is not HTTP \(its name says so\): a "
                       "filter or mirror mode needs HTTP; if it does speak HTTP, add --protocol"):
        route_protocol(None, None, "tcp-db", me, Mode.ROUTE, "s:5432/tcp-db")
    with pytest.raises(UserError, match=r"\(its appProtocol says so\)"):
        route_protocol(None, "mysql", None, EVERYTHING, Mode.MIRROR, "s")
    with pytest.raises(UserError, match=r"\(--protocol tcp says so\)"):
        route_protocol(AppProtocol.TCP, None, None, EVERYTHING, Mode.MIRROR, "s")
