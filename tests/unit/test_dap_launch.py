"""Planning a launch/attach (innerloop.core.dap_launch)."""

from __future__ import annotations

from typing import Any

import pytest
from dap_messages import req
from innerloop.core import dap_launch as r
from innerloop.core.dap_wire import Message
from innerloop.core.errors import UserError
from innerloop.core.request import InterceptRequest, PortSpec, WhilePaused

LAUNCH = {
    "type": "innerloop",
    "request": "launch",
    "name": "orders",
    "service": "orders",
    "namespace": "shop",
    "servicePort": 80,
    "port": 8080,
    "program": "app.py",
    "args": ["--x"],
    "cwd": "/src",
    "env": {"A": "1", "B": None},
    "envFile": ".env",
    "python": "/usr/bin/python3",
    "justMyCode": False,
    "subProcess": True,
    "whilePaused": "hold",
    "keepIntercept": True,
    "innerloopToken": "t",
}


def plan(command: str, **arguments: Any) -> r.StartPlan:
    return r.plan_start(req(3, command, **arguments))


def test_launch_plan_splits_innerloop_and_debugpy_arguments() -> None:
    p = plan("launch", **LAUNCH)
    assert p.command == "launch" and p.connect is None
    assert p.intercept == InterceptRequest("orders", "shop", PortSpec(80, 8080), WhilePaused.HOLD)
    assert p.keep_intercept
    assert p.env_file == "/src/.env"
    assert p.env == {"A": "1", "B": None}
    assert p.arguments == {
        "type": "python",
        "request": "launch",
        "name": "orders",
        "program": "app.py",
        "args": ["--x"],
        "cwd": "/src",
        "python": "/usr/bin/python3",
        "justMyCode": False,
        "subProcess": True,
        "console": "internalConsole",
    }
    assert r.launch_arguments(p, {"A": "2"})["env"] == {"A": "2"}


def test_launch_plan_defaults() -> None:
    p = plan("launch", service="orders", port="8080", module="app", console="integratedTerminal")
    assert p.intercept == InterceptRequest("orders", None, PortSpec(None, 8080))
    assert p.env_file is None and p.env == {}
    assert p.arguments["console"] == "integratedTerminal"


def test_env_file_paths() -> None:
    assert (
        plan("launch", service="s", port=1, module="m", envFile="/abs/.env").env_file == "/abs/.env"
    )
    assert plan("launch", service="s", port=1, module="m", envFile="rel.env").env_file == "rel.env"
    assert plan("launch", service="s", port=1, module="m", servicePort="http").intercept == (
        InterceptRequest("s", None, PortSpec("http", 1))
    )


@pytest.mark.parametrize(
    ("command", "arguments", "problem"),
    [
        ("launch", None, "without arguments"),
        ("launch", {"service": "s", "port": 1}, 'exactly one of "program" or "module"'),
        ("launch", {"service": "s", "port": 1, "program": "a", "module": "b"}, "exactly one"),
        ("launch", {"service": "s", "port": 1, "program": ""}, '"program" must be'),
        ("launch", {"port": 1, "program": "a"}, 'needs "service"'),
        ("launch", {"service": "", "port": 1, "program": "a"}, 'needs "service"'),
        ("launch", {"service": "s", "program": "a"}, 'needs "port"'),
        ("launch", {"service": "s", "port": 0, "program": "a"}, '"port" must be'),
        ("launch", {"service": "s", "port": 70000, "program": "a"}, '"port" must be'),
        ("launch", {"service": "s", "port": True, "program": "a"}, '"port" must be'),
        ("launch", {"service": "s", "port": "8o", "program": "a"}, '"port" must be'),
        ("launch", {"service": "s", "port": 1, "program": "a", "servicePort": ""}, "servicePort"),
        ("launch", {"service": "s", "port": 1, "program": "a", "servicePort": 1.5}, "servicePort"),
        ("launch", {"service": "s", "port": 1, "program": "a", "whilePaused": "x"}, "whilePaused"),
        ("launch", {"service": "s", "port": 1, "program": "a", "keepIntercept": 1}, "keepInt"),
        ("launch", {"service": "s", "port": 1, "program": "a", "namespace": 3}, '"namespace"'),
        ("launch", {"service": "s", "port": 1, "program": "a", "cwd": ["/"]}, '"cwd"'),
        ("launch", {"service": "s", "port": 1, "program": "a", "env": []}, '"env" must'),
        ("launch", {"service": "s", "port": 1, "program": "a", "env": {"A": 1}}, '"env" must'),
        ("attach", {"service": "s", "port": 1}, 'needs "connect"'),
        ("attach", {"service": "s", "port": 1, "connect": 5678}, '"connect" must be'),
        ("attach", {"service": "s", "port": 1, "connect": {}}, '"connect.port"'),
        ("attach", {"service": "s", "port": 1, "connect": {"port": 1, "host": ""}}, "host"),
        (
            "attach",
            {"service": "s", "port": 1, "connect": {"port": 1}, "connectTimeout": 0},
            "connectTimeout",
        ),
        (
            "attach",
            {"service": "s", "port": 1, "connect": {"port": 1}, "connectTimeout": True},
            "connectTimeout",
        ),
        ("attach", {"subProcessId": "12", "connect": {"port": 1}}, "subProcessId"),
        ("attach", {"subProcessId": 12}, 'without "connect"'),
    ],
)
def test_plan_rejects_with_one_line(command: str, arguments: Any, problem: str) -> None:
    request: Message = {"type": "request", "seq": 1, "command": command}
    if arguments is not None:
        request["arguments"] = arguments
    with pytest.raises(UserError, match=problem) as info:
        r.plan_start(request)
    assert "\n" not in str(info.value)


def test_attach_plan_connects_to_a_running_debugpy() -> None:
    p = plan(
        "attach",
        service="s",
        port=8080,
        connect={"port": 5678},
        connectTimeout=2,
        justMyCode=True,
        innerloopToken="t",
    )
    assert p.connect == r.Endpoint("127.0.0.1", 5678) and str(p.connect) == "127.0.0.1:5678"
    assert p.connect_timeout == 2.0
    assert p.intercept == InterceptRequest("s", None, PortSpec(None, 8080))
    assert p.arguments == {"type": "python", "connect": {"port": 5678}, "justMyCode": True}
    assert plan("attach", service="s", port=1, connect={"port": 1}).connect_timeout == (
        r.DEFAULT_CONNECT_TIMEOUT
    )


def test_subprocess_attach_joins_its_parent() -> None:
    p = plan("attach", type="innerloop", subProcessId=42, connect={"host": "::1", "port": 9})
    assert p.intercept is None
    assert p.connect == r.Endpoint("::1", 9)
    assert p.connect_timeout == r.SUBPROCESS_CONNECT_TIMEOUT
    assert p.arguments["type"] == "python" and p.arguments["subProcessId"] == 42


def test_start_token() -> None:
    assert r.start_token({"innerloopToken": "abc"}) == "abc"
    assert r.start_token({"innerloopToken": 1}) is None
    assert r.start_token({}) is None


@pytest.mark.parametrize(
    ("keep", "disconnect", "result"),
    [
        (False, {}, False),
        (False, {"restart": True}, True),
        (False, {"restart": "yes"}, False),
        (True, {}, True),
    ],
)
def test_keep_on_disconnect(keep: bool, disconnect: Message, result: bool) -> None:
    assert r.keep_on_disconnect(keep, disconnect) is result


def test_merge_env_precedence() -> None:
    merged = r.merge_env(
        {"A": "w", "B": "w", "C": "w"}, {"B": "f", "D": "f"}, {"C": None, "D": "l"}
    )
    assert merged == {"A": "w", "B": "f", "C": None, "D": "l"}
