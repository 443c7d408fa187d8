"""Pause counting across a session's processes (innerloop.core.dap_pause)."""

from __future__ import annotations

import pytest
from dap_messages import ev, req, resp
from innerloop.core import dap_pause as r
from innerloop.core.dap_wire import Message

# Each row: a script of (process, direction, message) and the flips expected after each step.
# ">" is a request/response towards the adapter, "<" a message from it, "x" the session ending.
Step = tuple[str, str, Message]

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
