"""Redirecting debugpy subprocess announcements (innerloop.core.dap_subprocess)."""

from __future__ import annotations

import pytest
from dap_messages import ev, req, resp
from innerloop.core import dap_subprocess as r
from innerloop.core.dap_launch import Endpoint
from innerloop.core.dap_wire import Message

CHILD = {
    "type": "python",
    "request": "attach",
    "subProcessId": 7,
    "connect": {"host": "127.0.0.1", "port": 4000},
}


def test_start_debugging_is_redirected_through_the_relay() -> None:
    msg = req(5, "startDebugging", request="attach", configuration=CHILD)
    assert r.subprocess_target(msg) == Endpoint("127.0.0.1", 4000)
    out = r.redirect_subprocess(msg, Endpoint("127.0.0.1", 5000), "tok")
    assert out["arguments"]["request"] == "attach"
    assert out["arguments"]["configuration"] == {
        **CHILD,
        "type": "innerloop",
        "connect": {"host": "127.0.0.1", "port": 5000},
        "innerloopToken": "tok",
    }
    assert msg["arguments"]["configuration"] == CHILD  # not mutated


def test_debugpy_attach_event_is_redirected_too() -> None:
    msg = {"type": "event", "seq": 1, "event": "debugpyAttach", "body": CHILD}
    assert r.subprocess_target(msg) == Endpoint("127.0.0.1", 4000)
    out = r.redirect_subprocess(msg, Endpoint("127.0.0.1", 5000), None)
    assert out["body"]["connect"] == {"host": "127.0.0.1", "port": 5000}
    assert "innerloopToken" not in out["body"]


@pytest.mark.parametrize(
    "msg",
    [
        req(1, "runInTerminal"),
        ev("output"),
        resp(1, "startDebugging"),
        req(1, "startDebugging", configuration="x"),
        {"type": "event", "seq": 1, "event": "debugpyAttach"},
        req(1, "startDebugging", configuration={"connect": {"port": "x"}}),
    ],
)
def test_other_messages_are_not_subprocess_announcements(msg: Message) -> None:
    assert r.subprocess_target(msg) is None
