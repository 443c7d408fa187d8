"""Table tests for the pure DAP proxy rules (innerloop.core.dap_rules)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from innerloop.core import dap_rules as r
from innerloop.core.errors import LocalProtocolError, RemoteProtocolError, UserError
from innerloop.core.request import InterceptRequest, PortSpec, WhilePaused


def frame(obj: object) -> bytes:
    body = json.dumps(obj).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def req(seq: int, command: str, **arguments: Any) -> r.Message:
    return {"type": "request", "seq": seq, "command": command, "arguments": arguments}


def resp(request_seq: int, command: str, success: bool = True, **body: Any) -> r.Message:
    msg: r.Message = {
        "type": "response",
        "seq": 99,
        "request_seq": request_seq,
        "command": command,
        "success": success,
    }
    if body:
        msg["body"] = body
    return msg


def ev(name: str, **body: Any) -> r.Message:
    return {"type": "event", "seq": 7, "event": name, "body": body}


# ---------------------------------------------------------------------------------- framing


def test_parser_splits_and_joins_messages_across_chunks() -> None:
    a, b = req(1, "initialize"), ev("output", output="héllo")
    data = r.encode(a) + r.encode(b)
    parser = r.DapParser()
    got: list[r.Message] = []
    for i in range(len(data)):
        got += parser.feed(data[i : i + 1])
    assert got == [a, b]
    parser.eof()


@given(st.lists(st.binary(max_size=40), max_size=8), st.integers(1, 64))
def test_parser_reassembles_any_chunking(payloads: list[bytes], chunk: int) -> None:
    msgs = [ev("output", output=p.hex()) for p in payloads]
    data = b"".join(r.encode(m) for m in msgs)
    parser = r.DapParser()
    got = [m for i in range(0, len(data), chunk) for m in parser.feed(data[i : i + chunk])]
    assert got == msgs


def test_parser_ignores_other_headers_and_header_case() -> None:
    body = json.dumps(ev("x")).encode()
    data = b"Content-Type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    assert r.DapParser().feed(data) == [ev("x")]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", "duplicate"),
        (b"Content-Length: -1\r\n\r\n", "bad Content-Length"),
        (b"Content-Length: 1e3\r\n\r\n", "bad Content-Length"),
        (b"X-Other: 1\r\n\r\n", "without Content-Length"),
        (b"garbage\r\n\r\n", "malformed DAP header"),
        ("Content-Lèngth: 2\r\n\r\n{}".encode(), "not ASCII"),
        (b"Content-Length: 99999\r\n\r\n", "exceeds"),
        (b"x" * (r.MAX_HEADER_BYTES + 1), "too long"),
        (b"Content-Length: 4\r\n\r\n\xff\xfe{}", "not UTF-8 JSON"),
        (b"Content-Length: 3\r\n\r\n{x}", "not UTF-8 JSON"),
        (frame([1]), "not a JSON object"),
        (frame({"type": "event", "event": "x"}), "integer seq"),
        (frame({"seq": True, "type": "event", "event": "x"}), "integer seq"),
        (frame({"seq": 1, "type": "notification"}), "unknown DAP message type"),
        (frame({"seq": 1, "type": 5}), "unknown DAP message type"),
        (frame({"seq": 1, "type": "request"}), "valid 'command'"),
        (frame({"seq": 1, "type": "event", "event": 3}), "valid 'event'"),
        (frame({**resp(1, "next"), "request_seq": "1"}), "valid 'request_seq'"),
        (frame({**resp(1, "next"), "success": 1}), "valid 'success'"),
        (frame({**resp(1, "next"), "command": None}), "valid 'command'"),
    ],
)
def test_parser_rejects_malformed_input(data: bytes, problem: str) -> None:
    with pytest.raises(RemoteProtocolError, match=problem):
        r.DapParser(max_body=1000).feed(data)


@pytest.mark.parametrize("tail", [b"Content-Len", b"Content-Length: 5\r\n\r\n{}"])
def test_eof_inside_a_message_is_the_peers_error(tail: bytes) -> None:
    parser = r.DapParser()
    parser.feed(tail)
    with pytest.raises(RemoteProtocolError, match="ended inside"):
        parser.eof()


def test_encode_refuses_what_json_cannot_carry() -> None:
    with pytest.raises(LocalProtocolError):
        r.encode({"seq": 1, "type": "event", "event": "x", "body": {1, 2}})


# ---------------------------------------------------------------------------------- messages


def test_error_response_carries_one_user_line() -> None:
    msg = r.error_response(req(4, "launch"), "fix it")
    assert msg == {
        "type": "response",
        "seq": 0,
        "request_seq": 4,
        "command": "launch",
        "success": False,
        "message": "fix it",
        "body": {"error": {"id": 1, "format": "fix it", "showUser": True}},
    }


def test_output_event_goes_to_the_console() -> None:
    assert r.output_event("hi")["body"] == {"category": "console", "output": "innerloop: hi\n"}
    assert "body" not in r.event("initialized")


# ---------------------------------------------------------------------------------- seq map


def test_seq_map_keeps_each_side_gap_free_and_maps_responses_back() -> None:
    seqs = r.SeqMap()
    C, A = r.Side.CLIENT, r.Side.ADAPTER
    # proxy answers initialize itself, then injects an output event
    assert seqs.message(C, r.response(req(1, "initialize")))["seq"] == 1
    assert seqs.message(C, r.output_event("x"))["seq"] == 2
    # the proxy asks the adapter itself: the answer comes back unchanged, marked as ours
    mine = seqs.request(A, req(0, "initialize"), origin_seq=None)
    assert mine["seq"] == 1
    answer, pending = seqs.response_from(A, resp(1, "initialize"))
    assert pending == r.Pending(None, "initialize") and answer == resp(1, "initialize")
    # a client request forwarded: renumbered; its response carries the client's seq again
    fwd = seqs.request(A, req(2, "launch"), origin_seq=2)
    assert fwd["seq"] == 2
    back, pending = seqs.response_from(A, resp(2, "launch"))
    assert (back["request_seq"], pending.origin_seq) == (2, 2)
    # stamped when it leaves: after an output event the proxy sent meanwhile
    assert seqs.message(C, r.output_event("y"))["seq"] == 3
    assert seqs.message(C, back)["seq"] == 4
    # a reverse request, and the client's answer mapped to the adapter's numbering
    rev = seqs.request(C, req(50, "runInTerminal"), origin_seq=50)
    assert rev["seq"] == 5
    answer, _ = seqs.response_from(C, resp(5, "runInTerminal"))
    assert answer["request_seq"] == 50
    assert seqs.message(A, answer)["seq"] == 3


def test_seq_map_rejects_answers_to_unknown_requests() -> None:
    with pytest.raises(RemoteProtocolError, match="never sent"):
        r.SeqMap().response_from(r.Side.ADAPTER, resp(9, "next"))


# ---------------------------------------------------------------------------------- routes


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
def test_client_routes(msg: r.Message, route: r.ClientRoute) -> None:
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
def test_capabilities_update(actual: r.Message, update: r.Message | None) -> None:
    want = None if update is None else {"capabilities": update}
    assert r.capabilities_update(r.PROXY_CAPABILITIES, actual) == want


def test_capabilities_update_ignores_keys_announced_false_and_absent() -> None:
    assert r.capabilities_update({"supportsX": False}, {}) is None


# ---------------------------------------------------------------------------------- planning

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
    request: r.Message = {"type": "request", "seq": 1, "command": command}
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
    ("config", "text"),
    [
        (InterceptRequest("orders", "shop", PortSpec(80, 8080)), "orders.shop:80 → localhost:8080"),
        (InterceptRequest("orders", None, PortSpec("http", 8080)), "orders:http → localhost:8080"),
        (InterceptRequest("orders", None, PortSpec(None, 3000)), "orders → localhost:3000"),
    ],
)
def test_describe(config: InterceptRequest, text: str) -> None:
    assert config.describe() == text
    assert r.say_intercepting(config) == f"intercepting {text}"
    assert text in r.say_active(config)


def test_user_messages() -> None:
    cluster = InterceptRequest("s", None, PortSpec(None, 1))
    hold = InterceptRequest("s", None, PortSpec(None, 1), WhilePaused.HOLD)
    assert "cluster" in r.say_paused(cluster, True)
    assert "held" in r.say_paused(hold, True)
    assert "resumed" in r.say_paused(hold, False)
    assert r.say_left(False) == "left intercept"
    assert "kept" in r.say_left(True)


@pytest.mark.parametrize(
    ("keep", "disconnect", "result"),
    [
        (False, {}, False),
        (False, {"restart": True}, True),
        (False, {"restart": "yes"}, False),
        (True, {}, True),
    ],
)
def test_keep_on_disconnect(keep: bool, disconnect: r.Message, result: bool) -> None:
    assert r.keep_on_disconnect(keep, disconnect) is result


# ---------------------------------------------------------------------------------- env


def test_env_file_syntax() -> None:
    text = r"""# comment

PLAIN=value
export EXPORTED = spaced
EMPTY=
COMMENTED=abc # trailing
HASH=a#b
SINGLE='it # raw \n'
SINGLE2='raw \n' # ok
DOUBLE="line\nnext \"q\" \x"
DOTTED.NAME-1=x
"""
    assert r.parse_env_file(text) == {
        "PLAIN": "value",
        "EXPORTED": "spaced",
        "EMPTY": "",
        "COMMENTED": "abc",
        "HASH": "a#b",
        "SINGLE": "it # raw \\n",
        "SINGLE2": "raw \\n",
        "DOUBLE": 'line\nnext "q" \\x',
        "DOTTED.NAME-1": "x",
    }


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("NOEQUALS", "expected NAME=value"),
        ("1BAD=x", "expected NAME=value"),
        ("=x", "expected NAME=value"),
        ("A='open", "unterminated"),
        ('A="open \\"', "unterminated"),
        ('A="x" y', "unexpected text"),
    ],
)
def test_env_file_errors_name_the_line(line: str, problem: str) -> None:
    with pytest.raises(UserError, match=f"my.env line 2: {problem}"):
        r.parse_env_file(f"OK=1\n{line}", "my.env")


def test_merge_env_precedence() -> None:
    merged = r.merge_env(
        {"A": "w", "B": "w", "C": "w"}, {"B": "f", "D": "f"}, {"C": None, "D": "l"}
    )
    assert merged == {"A": "w", "B": "f", "C": None, "D": "l"}


# ---------------------------------------------------------------------------------- subprocesses

CHILD = {
    "type": "python",
    "request": "attach",
    "subProcessId": 7,
    "connect": {"host": "127.0.0.1", "port": 4000},
}


def test_start_debugging_is_redirected_through_the_relay() -> None:
    msg = req(5, "startDebugging", request="attach", configuration=CHILD)
    assert r.subprocess_target(msg) == r.Endpoint("127.0.0.1", 4000)
    out = r.redirect_subprocess(msg, r.Endpoint("127.0.0.1", 5000), "tok")
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
    assert r.subprocess_target(msg) == r.Endpoint("127.0.0.1", 4000)
    out = r.redirect_subprocess(msg, r.Endpoint("127.0.0.1", 5000), None)
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
def test_other_messages_are_not_subprocess_announcements(msg: r.Message) -> None:
    assert r.subprocess_target(msg) is None


# ---------------------------------------------------------------------------------- pausing

# Each row: a script of (process, direction, message) and the flips expected after each step.
# ">" is a request/response towards the adapter, "<" a message from it, "x" the session ending.
Step = tuple[str, str, r.Message]

PAUSE_SCRIPTS: dict[str, tuple[list[Step], list[bool | None]]] = {
    "debugpy default: stopped all, continued all": (
        [
            ("main", "<", ev("stopped", reason="breakpoint", threadId=1, allThreadsStopped=True)),
            ("main", ">", req(10, "continue", threadId=1)),
            ("main", "<", ev("continued", threadId=1, allThreadsContinued=True)),
            ("main", "<", resp(10, "continue", allThreadsContinued=True)),
        ],
        [True, None, False, None],
    ),
    "resume from the response when no continued event comes": (
        [
            ("main", "<", ev("stopped", threadId=1)),
            ("main", ">", req(10, "continue", threadId=1)),
            ("main", "<", resp(10, "continue")),
        ],
        [True, None, False],
    ),
    "continue response may say only one thread continued": (
        [
            ("main", "<", ev("stopped", threadId=1)),
            ("main", "<", ev("stopped", threadId=2)),
            ("main", ">", req(10, "continue", threadId=1)),
            ("main", "<", resp(10, "continue", allThreadsContinued=False)),
            ("main", ">", req(11, "continue", threadId=2, singleThread=True)),
            ("main", "<", resp(11, "continue")),
        ],
        [True, None, None, None, None, False],
    ),
    "a failed resume changes nothing": (
        [
            ("main", "<", ev("stopped", threadId=1, allThreadsStopped=True)),
            ("main", ">", req(10, "next", threadId=1)),
            ("main", "<", resp(10, "next", success=False)),
        ],
        [True, None, None],
    ),
    "a stale resume response after a new stop is ignored": (
        [
            ("main", "<", ev("stopped", threadId=1, allThreadsStopped=True)),
            ("main", ">", req(10, "next", threadId=1)),
            ("main", "<", ev("stopped", reason="step", threadId=1, allThreadsStopped=True)),
            ("main", "<", resp(10, "next")),
        ],
        [True, None, None, None],
    ),
    "single-thread step resumes only that thread": (
        [
            ("main", "<", ev("stopped", threadId=1)),
            ("main", "<", ev("stopped", threadId=2)),
            ("main", ">", req(10, "stepIn", threadId=1, singleThread=True)),
            ("main", "<", resp(10, "stepIn")),
            ("main", ">", req(11, "stepOut", threadId=2)),
            ("main", "<", resp(11, "stepOut")),
        ],
        [True, None, None, None, None, False],
    ),
    "goto resumes its thread only": (
        [
            ("main", "<", ev("stopped", threadId=1)),
            ("main", ">", req(10, "goto", threadId=1, targetId=3)),
            ("main", "<", resp(10, "goto")),
        ],
        [True, None, False],
    ),
    "per-thread continued events": (
        [
            ("main", "<", ev("stopped", threadId=1)),
            ("main", "<", ev("stopped", threadId=2)),
            ("main", "<", ev("continued", threadId=1)),
            ("main", "<", ev("thread", reason="exited", threadId=2)),
        ],
        [True, None, None, False],
    ),
    "a thread starting does not resume anything": (
        [
            ("main", "<", ev("stopped")),
            ("main", "<", ev("thread", reason="started", threadId=5)),
            ("main", "<", ev("continued", threadId=5)),
            ("main", "<", ev("exited", exitCode=0)),
        ],
        [True, None, None, False],
    ),
    "paused while any process is stopped": (
        [
            ("main", "<", ev("stopped", threadId=1, allThreadsStopped=True)),
            ("child-1", "<", ev("stopped", threadId=9, allThreadsStopped=True)),
            ("main", "<", ev("continued", threadId=1, allThreadsContinued=True)),
            ("child-1", "<", ev("terminated")),
            ("child-2", "<", ev("stopped", threadId=3, allThreadsStopped=True)),
            ("child-2", "x", {}),
            ("child-3", "x", {}),
        ],
        [True, None, None, False, True, False, None],
    ),
    "requests and responses that do not resume": (
        [
            ("main", "<", ev("stopped", threadId=1)),
            ("main", ">", req(10, "stackTrace", threadId=1)),
            ("main", "<", resp(10, "stackTrace")),
            ("main", ">", ev("custom")),
            ("main", "<", req(3, "runInTerminal")),
        ],
        [True, None, None, None, None],
    ),
}


@pytest.mark.parametrize("name", list(PAUSE_SCRIPTS))
def test_pause_counter(name: str) -> None:
    steps, flips = PAUSE_SCRIPTS[name]
    counter = r.PauseCounter()
    got: list[bool | None] = []
    for process, direction, msg in steps:
        if direction == ">":
            counter.to_adapter(process, msg)
            got.append(None)
        elif direction == "<":
            got.append(counter.from_adapter(process, msg))
        else:
            got.append(counter.forget(process))
    assert got == flips
    assert counter.paused is next((f for f in reversed(flips) if f is not None), False)
