"""The phases of one proxied debug session, as one table, and what each does with client messages.

A session answers `initialize` itself, starts on an authorised launch/attach (intercept first,
then debugpy), passes everything through while debugpy runs, and refuses what needs a debugpy
that is not (or no longer) there. `step` is the only way the phase changes; a transition the
table does not name is our bug and raises LocalProtocolError.
"""

from __future__ import annotations

import enum
from typing import assert_never

from innerloop.core.dap_routes import ClientRoute, client_route
from innerloop.core.dap_wire import Message
from innerloop.core.errors import LocalProtocolError


class SessionPhase(enum.Enum):
    NEW = "new"
    """Waiting for `initialize`."""
    INITIALIZED = "initialized"
    """Answered `initialize`; waiting for launch/attach."""
    STARTING = "starting"
    """Intercepting and reaching debugpy; client messages wait in a backlog."""
    STARTING_WITHOUT_ADAPTER = "starting without adapter"
    """debugpy's adapter closed while the start was still running; the start usually fails."""
    START_FAILED = "start failed"
    """The client was refused its launch/attach; only ending the session is left to do."""
    RUNNING = "running"
    """Pass-through to debugpy."""
    ADAPTER_GONE = "adapter gone"
    """debugpy's adapter closed; requests needing it are refused."""
    ENDED = "ended"
    """The client went away; the session is cleaning up."""


class SessionEvent(enum.Enum):
    INITIALIZE = "initialize"
    START = "start"
    STARTED = "started"
    START_FAILED = "start failed"
    ADAPTER_GONE = "adapter gone"
    END = "end"


TRANSITIONS: dict[tuple[SessionPhase, SessionEvent], SessionPhase] = {
    (SessionPhase.NEW, SessionEvent.INITIALIZE): SessionPhase.INITIALIZED,
    (SessionPhase.INITIALIZED, SessionEvent.START): SessionPhase.STARTING,
    (SessionPhase.STARTING, SessionEvent.STARTED): SessionPhase.RUNNING,
    (SessionPhase.STARTING, SessionEvent.START_FAILED): SessionPhase.START_FAILED,
    (SessionPhase.STARTING, SessionEvent.ADAPTER_GONE): SessionPhase.STARTING_WITHOUT_ADAPTER,
    (SessionPhase.STARTING_WITHOUT_ADAPTER, SessionEvent.STARTED): SessionPhase.ADAPTER_GONE,
    (SessionPhase.STARTING_WITHOUT_ADAPTER, SessionEvent.START_FAILED): SessionPhase.START_FAILED,
    # A failed start closes the adapter it opened.
    (SessionPhase.START_FAILED, SessionEvent.ADAPTER_GONE): SessionPhase.START_FAILED,
    (SessionPhase.RUNNING, SessionEvent.ADAPTER_GONE): SessionPhase.ADAPTER_GONE,
    # Ending cancels the start and closes the adapter; whatever they report comes too late.
    (SessionPhase.ENDED, SessionEvent.STARTED): SessionPhase.ENDED,
    (SessionPhase.ENDED, SessionEvent.START_FAILED): SessionPhase.ENDED,
    (SessionPhase.ENDED, SessionEvent.ADAPTER_GONE): SessionPhase.ENDED,
    **{
        (phase, SessionEvent.END): SessionPhase.ENDED
        for phase in SessionPhase
        if phase is not SessionPhase.ENDED
    },
}


def step(phase: SessionPhase, event: SessionEvent) -> SessionPhase:
    try:
        return TRANSITIONS[phase, event]
    except KeyError:
        raise LocalProtocolError(f"debug session: {event.value!r} while {phase.value}") from None


class ClientAction(enum.Enum):
    """What the proxy does with one message from the client."""

    INITIALIZE = "initialize"  # answer with the proxy's capabilities
    REFUSE_INITIALIZE = "refuse initialize"  # a second initialize
    START = "start"  # launch/attach after initialize
    START_TOO_EARLY = "start too early"  # launch/attach before initialize
    REFUSE_START = "refuse start"  # a second launch/attach
    FORWARD = "forward"
    BACKLOG = "backlog"  # forwarded once debugpy is there
    DROP = "drop"  # the start failed: nothing will ever answer it
    END = "end"  # answer a disconnect (or a terminate during the start) and end the session
    REFUSE = "refuse"  # a request needing a running debugpy
    IGNORE = "ignore"  # a response or event with nobody to receive it


_ENDS_A_START = frozenset({"disconnect", "terminate"})


def client_action(phase: SessionPhase, msg: Message) -> ClientAction:
    if phase is SessionPhase.ENDED:
        raise LocalProtocolError("debug session: client message after the session ended")
    route = client_route(msg)
    match route:
        case ClientRoute.INITIALIZE:
            if phase is SessionPhase.NEW:
                return ClientAction.INITIALIZE
            return ClientAction.REFUSE_INITIALIZE
        case ClientRoute.START:
            if phase is SessionPhase.NEW:
                return ClientAction.START_TOO_EARLY
            if phase is SessionPhase.INITIALIZED:
                return ClientAction.START
            return ClientAction.REFUSE_START
        case ClientRoute.FORWARD:
            return _other(phase, msg)
        case _:
            assert_never(route)


def _other(phase: SessionPhase, msg: Message) -> ClientAction:
    """A message the proxy does not override, in a phase that is not ENDED."""
    is_request = msg["type"] == "request"
    match phase:
        case SessionPhase.RUNNING:
            return ClientAction.FORWARD
        case (
            SessionPhase.STARTING
            | SessionPhase.STARTING_WITHOUT_ADAPTER
            | SessionPhase.START_FAILED
        ):
            if is_request and msg["command"] in _ENDS_A_START:
                return ClientAction.END  # ending the session cancels the start
            return ClientAction.DROP if phase is SessionPhase.START_FAILED else ClientAction.BACKLOG
        case SessionPhase.NEW | SessionPhase.INITIALIZED | SessionPhase.ADAPTER_GONE:
            if not is_request:
                return ClientAction.IGNORE
            return ClientAction.END if msg["command"] == "disconnect" else ClientAction.REFUSE
        case SessionPhase.ENDED:
            raise LocalProtocolError("debug session: client message after the session ended")
        case _:
            assert_never(phase)
