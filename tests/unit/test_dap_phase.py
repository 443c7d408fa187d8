"""The debug session's phases and what each does with client messages (innerloop.core.dap_phase).

Expectations are written out here, not read back from the table under test."""

from __future__ import annotations

import pytest
from dap_messages import ev, req, resp
from innerloop.core.dap_phase import (
    ClientAction,
    SessionEvent,
    SessionPhase,
    client_action,
    step,
)
from innerloop.core.dap_wire import Message
from innerloop.core.errors import LocalProtocolError

P, E, A = SessionPhase, SessionEvent, ClientAction


@pytest.mark.parametrize(
    ("events", "phase"),
    [
        ([E.INITIALIZE], P.INITIALIZED),
        ([E.INITIALIZE, E.START, E.STARTED], P.RUNNING),
        ([E.INITIALIZE, E.START, E.STARTED, E.ADAPTER_GONE], P.ADAPTER_GONE),
        ([E.INITIALIZE, E.START, E.START_FAILED, E.ADAPTER_GONE], P.START_FAILED),
        ([E.INITIALIZE, E.START, E.ADAPTER_GONE, E.START_FAILED], P.START_FAILED),
        # the adapter closed just after answering initialize: the launch went out anyway
        ([E.INITIALIZE, E.START, E.ADAPTER_GONE, E.STARTED], P.ADAPTER_GONE),
        ([E.END], P.ENDED),
        ([E.INITIALIZE, E.START, E.END, E.START_FAILED, E.ADAPTER_GONE], P.ENDED),
        ([E.INITIALIZE, E.START, E.END, E.STARTED], P.ENDED),
    ],
)
def test_session_phases(events: list[SessionEvent], phase: SessionPhase) -> None:
    now = P.NEW
    for event in events:
        now = step(now, event)
    assert now is phase


@pytest.mark.parametrize(
    ("phase", "event"),
    [
        (P.NEW, E.START),
        (P.INITIALIZED, E.INITIALIZE),
        (P.RUNNING, E.START),
        (P.RUNNING, E.START_FAILED),
        (P.START_FAILED, E.STARTED),
        (P.ENDED, E.END),
        (P.NEW, E.ADAPTER_GONE),
    ],
)
def test_illegal_transitions_are_our_bug(phase: SessionPhase, event: SessionEvent) -> None:
    with pytest.raises(LocalProtocolError, match=event.value):
        step(phase, event)


INIT, LAUNCH, ATTACH = req(1, "initialize"), req(2, "launch"), req(2, "attach")
NEXT, DISCONNECT, TERMINATE = req(3, "next"), req(4, "disconnect"), req(5, "terminate")
ANSWER, EVENT = resp(6, "runInTerminal"), ev("custom")

STARTING = (P.STARTING, P.STARTING_WITHOUT_ADAPTER)
IDLE = (P.NEW, P.INITIALIZED, P.ADAPTER_GONE)


@pytest.mark.parametrize(
    ("phases", "msg", "action"),
    [
        ((P.NEW,), INIT, A.INITIALIZE),
        (
            (P.INITIALIZED, P.RUNNING, *STARTING, P.START_FAILED, P.ADAPTER_GONE),
            INIT,
            A.REFUSE_INITIALIZE,
        ),
        ((P.NEW,), LAUNCH, A.START_TOO_EARLY),
        ((P.INITIALIZED,), LAUNCH, A.START),
        ((P.INITIALIZED,), ATTACH, A.START),
        ((P.RUNNING, *STARTING, P.START_FAILED, P.ADAPTER_GONE), ATTACH, A.REFUSE_START),
        ((P.RUNNING,), NEXT, A.FORWARD),
        ((P.RUNNING,), DISCONNECT, A.FORWARD),
        ((P.RUNNING,), ANSWER, A.FORWARD),
        ((P.RUNNING,), EVENT, A.FORWARD),
        (STARTING, NEXT, A.BACKLOG),
        (STARTING, ANSWER, A.BACKLOG),
        ((*STARTING, P.START_FAILED), DISCONNECT, A.END),
        ((*STARTING, P.START_FAILED), TERMINATE, A.END),
        ((P.START_FAILED,), NEXT, A.DROP),
        ((P.START_FAILED,), EVENT, A.DROP),
        (IDLE, DISCONNECT, A.END),
        (IDLE, TERMINATE, A.REFUSE),
        (IDLE, NEXT, A.REFUSE),
        (IDLE, ANSWER, A.IGNORE),
        (IDLE, EVENT, A.IGNORE),
    ],
)
def test_client_actions(
    phases: tuple[SessionPhase, ...], msg: Message, action: ClientAction
) -> None:
    for phase in phases:
        assert client_action(phase, msg) is action, phase


def test_no_client_message_after_the_session_ended() -> None:
    with pytest.raises(LocalProtocolError):
        client_action(P.ENDED, NEXT)
