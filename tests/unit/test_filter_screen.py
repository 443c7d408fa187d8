"""The byte screen that lets unmatched requests go to the app before h11 reads them: it may
say "unclaimed" only when no request in the bytes can match (never for a matching one)."""

from __future__ import annotations

import h11
from hypothesis import given
from hypothesis import strategies as st
from innerloop.core.filters import (
    EVERYTHING,
    HeaderMatch,
    RequestFilter,
    filter_from_json,
    matches,
    screened,
)

_NAMES = st.sampled_from(["x-dev", "X-Dev", "x-tenant", "X-TENANT", "accept"])
_VALUES = st.sampled_from(["me", "Me", "you", "acme-1", "a b", "Bench", "é", ""])
_PATHS = st.sampled_from(["/", "/api", "/API/x", "/api/orders?x=1", "http://h/api", "/three/a"])
_METHODS = st.sampled_from(["GET", "get", "POST", "Put"])


@st.composite
def filters(draw: st.DrawFn) -> RequestFilter:
    names = draw(st.lists(st.sampled_from(["x-dev", "x-tenant", "accept"]), unique=True,
                          max_size=2))
    headers = tuple(HeaderMatch(n, draw(_VALUES) if not regex else "^a", regex)
                    for n in names for regex in [draw(st.booleans())])
    return RequestFilter(headers=headers,
                         path_prefix=draw(st.none() | st.sampled_from(["/api", "/API", "/th"])),
                         method=draw(st.none() | st.sampled_from(["get", "POST"])))


@given(flt=filters(), method=_METHODS, target=_PATHS,
       headers=st.lists(st.tuples(_NAMES, _VALUES), max_size=4))
def test_a_matching_request_is_never_screened_out(
        flt: RequestFilter, method: str, target: str, headers: list[tuple[str, str]]) -> None:
    conn = h11.Connection(h11.CLIENT)
    head = conn.send(h11.Request(method=method, target=target,
                                 headers=[("host", "h"), *(
                                     (n, v.encode("latin-1")) for n, v in headers)]))
    assert head is not None
    server = h11.Connection(h11.SERVER)
    server.receive_data(head)
    request = server.next_event()
    assert isinstance(request, h11.Request)
    if matches(flt, request.method, request.target, request.headers.raw_items()):
        assert not screened([flt], head.lower())


def test_screen() -> None:
    mine = filter_from_json({"headers": {"x-dev": "me"}, "pathPrefix": "/api"})
    head = b"get /api/x http/1.1\r\nhost: h\r\nx-dev: you\r\n\r\n"
    assert screened([mine], head)
    assert not screened([mine], head.replace(b"you", b"me"))
    assert not screened([mine, EVERYTHING], head)  # the empty filter has nothing to look for
    assert not screened([filter_from_json({"pathRegex": "^/x"})], head)
    spaced = filter_from_json({"headers": {"x-dev": "a b"}})  # a folded line could split it
    assert not screened([spaced], b"get / http/1.1\r\nx-dev: a\r\n b\r\n\r\n")
    assert screened([], head)
