"""Personal intercepts as the user asks for them: CLI flags, launch.json / LSP `match` and
`mode`, all validated once into an InterceptRequest (docs/routing.md)."""

from __future__ import annotations

import pytest
from innerloop.cli import build_parser, intercept_request
from innerloop.core.dap_launch import INNERLOOP_KEYS
from innerloop.core.errors import UserError
from innerloop.core.filters import EVERYTHING, AppProtocol, Mode, filter_from_json
from innerloop.core.request import InterceptRequest, PortSpec, request_from_json
from innerloop.core.targets import service_ports
from k8s_manifests import service


def from_flags(*flags: str) -> InterceptRequest:
    return intercept_request(build_parser().parse_args(["intercept", "orders", *flags]))


def test_flags_build_the_filter_mode_and_protocol() -> None:
    request = from_flags("--port", "8080", "--header", "x-dev=me", "--header", "X-Tenant=~^acme-",
                         "--path-prefix", "/api", "--method", "post", "--mirror",
                         "--protocol", "h2")
    assert request.filter == filter_from_json(
        {"headers": {"x-dev": "me", "x-tenant": "~^acme-"}, "pathPrefix": "/api",
         "method": "POST"})
    assert (request.mode, request.protocol) == (Mode.MIRROR, AppProtocol.H2)
    assert request.describe() == (
        "orders → localhost:8080 (mirror: x-dev=me x-tenant=~^acme- path-prefix=/api "
        "method=POST)")
    plain = from_flags("--port", "8080")
    assert (plain.filter, plain.mode, plain.protocol) == (EVERYTHING, Mode.ROUTE, None)
    assert plain.describe() == "orders → localhost:8080" and plain.scope() == ""
    exact = from_flags("--path", "/a", "--path-regex", "a$")
    assert exact.scope() == "path=/a path-regex=a$"


def test_the_start_says_which_requests_it_takes_in_words() -> None:
    assert from_flags("--port", "8080", "--header", "x-dev=me").announce(AppProtocol.AUTO) == (
        "only requests with x-dev=me (read as HTTP/1.1 or HTTP/2, whichever each connection "
        "speaks)")
    assert from_flags("--port", "8080", "--mirror").announce(AppProtocol.HTTP1) == (
        "copies of all requests (read as HTTP/1.1)")
    assert from_flags("--port", "8080", "--mirror", "--path-prefix", "/api").announce(
        AppProtocol.H2) == "copies of path-prefix=/api (read as HTTP/2 (h2c))"
    assert from_flags("--port", "8080").announce(AppProtocol.AUTO) == ""
    assert {p.label() for p in AppProtocol} == {
        "HTTP/1.1 or HTTP/2, whichever each connection speaks", "HTTP/1.1", "HTTP/2 (h2c)",
        "TCP, whole connections"}


@pytest.mark.parametrize(("flags", "message"), [
    (["--header", "x-dev"], "bad --header 'x-dev': expected NAME=VALUE or NAME=~REGEX"),
    (["--header", "x=~("], "bad regex '(' for header x: missing ), unterminated subpattern"),
    (["--path-prefix", "api"], "bad path prefix 'api' in a filter: it must start with /"),
    (["--header", "x=1", "--protocol", "tcp"],
     "protocol tcp cannot be combined with a filter or mirror mode"),
    (["--mirror", "--protocol", "tcp"], "protocol tcp cannot be combined"),
])
def test_bad_flags_are_one_line(flags: list[str], message: str) -> None:
    with pytest.raises(UserError) as err:
        from_flags(*flags)
    assert str(err.value).startswith(message)


def test_launch_and_lsp_json_take_match_mode_and_protocol() -> None:
    obj = {"service": "orders", "port": 8080, "match": {"headers": {"x-dev": "me"}},
           "mode": "mirror", "protocol": "http1"}
    request = request_from_json(obj, "launch configuration", "port")
    assert request == InterceptRequest(
        "orders", port=PortSpec(None, 8080), filter=filter_from_json({"headers": {"x-dev": "me"}}),
        mode=Mode.MIRROR, protocol=AppProtocol.HTTP1)
    bare = request_from_json({"service": "orders", "match": None, "mode": ""}, "x", "port")
    assert (bare.filter, bare.mode, bare.protocol) == (EVERYTHING, Mode.ROUTE, None)
    assert {"match", "mode", "protocol"} <= INNERLOOP_KEYS  # never passed on to debugpy


@pytest.mark.parametrize(("obj", "message"), [
    ({"match": {"header": {}}}, 'launch: "match" has unknown key \'header\''),
    ({"match": {"pathRegex": "("}}, 'launch: "match": bad regex \'(\' for path'),
    ({"match": "x-dev=me"}, 'launch: "match" must be an object like'),
    ({"mode": "copy"}, 'launch: "mode" must be "route" or "mirror", got \'copy\''),
    ({"protocol": "http3"}, 'launch: "protocol" must be one of auto|http1|h2|tcp'),
])
def test_bad_launch_keys_are_one_line(obj: dict[str, object], message: str) -> None:
    with pytest.raises(UserError) as err:
        request_from_json({"service": "orders", **obj}, "launch", "port")
    assert str(err.value).startswith(message)


def test_service_ports_carry_their_app_protocol() -> None:
    svc = service(ports=[{"name": "grpc", "port": 50051, "protocol": "TCP",
                          "targetPort": 50051, "appProtocol": "kubernetes.io/h2c"},
                         {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}])
    assert [p.app_protocol for p in service_ports(svc)] == ["kubernetes.io/h2c", None]
