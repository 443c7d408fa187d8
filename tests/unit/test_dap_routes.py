"""Which messages the proxy overrides, passes or denies (innerloop.core.dap_routes)."""

from __future__ import annotations

import pytest
from dap_messages import ev, req, resp
from innerloop.core import dap_routes as r
from innerloop.core.dap_wire import Message


@pytest.mark.parametrize(
    ("msg", "route"),
    [
        (req(1, "initialize"), r.ClientRoute.INITIALIZE),
        (req(1, "launch"), r.ClientRoute.START),
        (req(1, "attach"), r.ClientRoute.START),
        (req(1, "setBreakpoints"), r.ClientRoute.FORWARD),
        (req(1, "disconnect"), r.ClientRoute.FORWARD),
        (resp(1, "launch"), r.ClientRoute.FORWARD),
        (ev("launch"), r.ClientRoute.FORWARD),
    ],
)
def test_client_routes(msg: Message, route: r.ClientRoute) -> None:
    assert r.client_route(msg) is route


@pytest.mark.parametrize(
    ("command", "allowed"),
    [("runInTerminal", True), ("startDebugging", True), ("evaluate", False), ("launch", False)],
)
def test_reverse_request_allow_list(command: str, allowed: bool) -> None:
    assert r.reverse_request_allowed(req(1, command)) is allowed


def test_denied_reverse_request_answers_the_adapter() -> None:
    msg = r.denied_reverse_request(req(12, "handshake"))
    assert (msg["request_seq"], msg["success"], msg["command"]) == (12, False, "handshake")


@pytest.mark.parametrize(
    ("actual", "update"),
    [
        (r.PROXY_CAPABILITIES, None),
        (
            {**r.PROXY_CAPABILITIES, "supportsDataBreakpoints": True},
            {"supportsDataBreakpoints": True},
        ),
        (
            {k: v for k, v in r.PROXY_CAPABILITIES.items() if k != "supportsLogPoints"},
            {"supportsLogPoints": False},
        ),
        (
            {**r.PROXY_CAPABILITIES, "exceptionBreakpointFilters": []},
            {"exceptionBreakpointFilters": []},
        ),
    ],
)
def test_capabilities_update(actual: Message, update: Message | None) -> None:
    want = None if update is None else {"capabilities": update}
    assert r.capabilities_update(r.PROXY_CAPABILITIES, actual) == want


def test_capabilities_update_ignores_keys_announced_false_and_absent() -> None:
    assert r.capabilities_update({"supportsX": False}, {}) is None
