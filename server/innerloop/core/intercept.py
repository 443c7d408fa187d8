"""The intercept state machine: one transition table, effects returned as data.

`step(state, event) -> (state, [effects])`. The intercept runner (innerloop.intercepts.intercept) executes the effects in order
(each is an await on the gateway or the tunnels) and feeds back the event that says how it went.
Nothing here does I/O; an event the table does not list for a phase raises LocalProtocolError.

Start, cold:  IDLE -START-> RESOLVING -AGENT_MISSING-> INSTALLING -AGENT_INSTALLED-> ROLLING_OUT
              -ROLLED_OUT-> CONNECTING -TUNNELS_OPEN-> CLAIMING -CLAIMED-> TAKING_OVER
              -SERVICE_TAKEN_OVER-> ACTIVE
Start, warm:  RESOLVING -AGENT_CURRENT-> CONNECTING (no rollout).
The Service is taken over last, after the claim succeeded, so a refused claim (someone else holds
the traffic) or a tunnel that cannot open (RBAC) has changed nothing but a sidecar this start
added, which the failure then removes ("every error leaves the cluster as it was") — except
after CLAIM_REFUSED: the holder's traffic runs through that sidecar (two cold starts raced and
both added it), so the refused start leaves it in place. Once ACTIVE
the sidecar is kept (agents are sticky): the `installed_agent` flag lives only while starting.

While running: ACTIVE ⇄ PAUSED (breakpoint); TUNNEL_LOST → RECONNECTING → CLAIMING … → ACTIVE
(the Service takeover is repeated, which is a no-op unless someone uninstalled meanwhile).
LEAVE from any phase but IDLE/ERROR unwinds what was done: → LEAVING -LEFT-> IDLE.
UNINSTALL from IDLE/ERROR: Service first, then the sidecar, → UNINSTALLING -UNINSTALLED-> IDLE.
FAILED from a busy phase unwinds like LEAVE and lands in ERROR, from which START retries and
LEAVE returns to IDLE.
"""

from __future__ import annotations

import enum

from innerloop.core.errors import LocalProtocolError
from innerloop.core.value import Value


class Phase(enum.Enum):
    IDLE = "idle"
    RESOLVING = "resolving"
    INSTALLING = "installing"
    ROLLING_OUT = "rolling-out"
    CONNECTING = "connecting"
    CLAIMING = "claiming"
    TAKING_OVER = "taking-over"
    ACTIVE = "active"
    PAUSED = "paused"
    RECONNECTING = "reconnecting"
    LEAVING = "leaving"
    UNINSTALLING = "uninstalling"
    ERROR = "error"


class InterceptEvent(enum.Enum):
    START = "start"
    AGENT_MISSING = "agent-missing"  # resolved; sidecar absent or outdated
    AGENT_CURRENT = "agent-current"  # resolved; sidecar present and current (warm path)
    AGENT_INSTALLED = "agent-installed"
    ROLLED_OUT = "rolled-out"
    TUNNELS_OPEN = "tunnels-open"
    CLAIMED = "claimed"
    SERVICE_TAKEN_OVER = "service-taken-over"
    PAUSE = "pause"
    RESUME = "resume"
    TUNNEL_LOST = "tunnel-lost"
    LEAVE = "leave"
    LEFT = "left"
    UNINSTALL = "uninstall"
    UNINSTALLED = "uninstalled"
    FAILED = "failed"
    CLAIM_REFUSED = "claim-refused"  # another client holds the traffic, on this agent


class Resolve(Value):
    """Resolve the target and check the agent: answer AGENT_MISSING or AGENT_CURRENT."""

    __slots__ = ()


class InstallAgent(Value):
    """Ensure the agent ConfigMap and patch the sidecar into the workload."""

    __slots__ = ()


class WaitRollout(Value):
    __slots__ = ()


class OpenTunnels(Value):
    """One tunnel per Ready replica (and keep following pod churn)."""

    __slots__ = ()


class RouteTraffic(Value):
    """Claim the route on every tunnel (a CLAIM frame each); a holder elsewhere makes it FAILED."""

    __slots__ = ()


class TakeOverService(Value):
    __slots__ = ()


class UpdatePause(Value):
    __slots__ = _fields = ("paused",)

    def __init__(self, paused: bool) -> None:
        self.paused = paused


class ReleaseTraffic(Value):
    __slots__ = ()


class CloseTunnels(Value):
    __slots__ = ()


class RestoreService(Value):
    __slots__ = ()


class RemoveAgent(Value):
    """Remove the sidecar and wait for its rollout."""

    __slots__ = ()


class Notify(Value):
    """Tell the user (CLI line, LSP status notification) the phase changed."""

    __slots__ = _fields = ("phase",)
    __match_args__ = ("phase",)

    def __init__(self, phase: Phase) -> None:
        self.phase = phase


Effect = (Resolve | InstallAgent | WaitRollout | OpenTunnels | RouteTraffic | TakeOverService
          | UpdatePause | ReleaseTraffic | CloseTunnels | RestoreService | RemoveAgent | Notify)
"""Something the intercept runner must do; each class names what."""


class InterceptState(Value):
    """``installed_agent``: this start added the sidecar, so unwinding the start must remove it."""

    __slots__ = _fields = ("phase", "installed_agent")

    def __init__(self, phase: Phase = Phase.IDLE, installed_agent: bool = False) -> None:
        self.phase, self.installed_agent = phase, installed_agent


class Rule(Value):
    """``if_installed``: appended to ``effects`` when the start being unwound added the
    sidecar."""

    __slots__ = _fields = ("to", "effects", "if_installed")

    def __init__(self, to: Phase, effects: tuple[Effect, ...] = (),
                 if_installed: tuple[Effect, ...] = ()) -> None:
        self.to, self.effects, self.if_installed = to, effects, if_installed


P, E = Phase, InterceptEvent
_STARTING = {P.INSTALLING, P.ROLLING_OUT, P.CONNECTING, P.CLAIMING, P.TAKING_OVER}
"""Phases in which a cold start's sidecar is still this start's to undo."""
_UNWIND_TUNNELS = (ReleaseTraffic(), CloseTunnels())
_UNDO_AGENT = (RemoveAgent(),)
_UNDO_TAKEOVER = (RestoreService(), RemoveAgent())


def _unwind(to: Phase) -> dict[Phase, Rule]:
    """What leaving (or failing) each phase must undo, landing in `to`."""
    return {
        P.RESOLVING: Rule(to),
        P.INSTALLING: Rule(to, (), _UNDO_AGENT),
        P.ROLLING_OUT: Rule(to, (), _UNDO_AGENT),
        P.CONNECTING: Rule(to, (CloseTunnels(),), _UNDO_AGENT),
        P.CLAIMING: Rule(to, _UNWIND_TUNNELS, _UNDO_AGENT),
        P.TAKING_OVER: Rule(to, _UNWIND_TUNNELS, _UNDO_TAKEOVER),
        P.ACTIVE: Rule(to, _UNWIND_TUNNELS),
        P.PAUSED: Rule(to, _UNWIND_TUNNELS),
        P.RECONNECTING: Rule(to, (CloseTunnels(),)),
    }


TABLE: dict[tuple[Phase, InterceptEvent], Rule] = {
    (P.IDLE, E.START): Rule(P.RESOLVING, (Resolve(),)),
    (P.ERROR, E.START): Rule(P.RESOLVING, (Resolve(),)),
    (P.RESOLVING, E.AGENT_MISSING): Rule(P.INSTALLING, (InstallAgent(),)),
    (P.RESOLVING, E.AGENT_CURRENT): Rule(P.CONNECTING, (OpenTunnels(),)),
    (P.INSTALLING, E.AGENT_INSTALLED): Rule(P.ROLLING_OUT, (WaitRollout(),)),
    (P.ROLLING_OUT, E.ROLLED_OUT): Rule(P.CONNECTING, (OpenTunnels(),)),
    (P.CONNECTING, E.TUNNELS_OPEN): Rule(P.CLAIMING, (RouteTraffic(),)),
    (P.CLAIMING, E.CLAIMED): Rule(P.TAKING_OVER, (TakeOverService(),)),
    (P.TAKING_OVER, E.SERVICE_TAKEN_OVER): Rule(P.ACTIVE),
    (P.ACTIVE, E.PAUSE): Rule(P.PAUSED, (UpdatePause(True),)),
    (P.PAUSED, E.RESUME): Rule(P.ACTIVE, (UpdatePause(False),)),
    (P.ACTIVE, E.TUNNEL_LOST): Rule(P.RECONNECTING, (CloseTunnels(), OpenTunnels())),
    (P.PAUSED, E.TUNNEL_LOST): Rule(P.RECONNECTING, (CloseTunnels(), OpenTunnels())),
    (P.RECONNECTING, E.TUNNELS_OPEN): Rule(P.CLAIMING, (RouteTraffic(),)),
    (P.RECONNECTING, E.TUNNEL_LOST): Rule(P.RECONNECTING, (CloseTunnels(), OpenTunnels())),
    # A breakpoint may come and go while the tunnels are down; the runner re-sends PAUSE
    # once ACTIVE again if the debuggee is still stopped.
    (P.RECONNECTING, E.PAUSE): Rule(P.RECONNECTING),
    (P.RECONNECTING, E.RESUME): Rule(P.RECONNECTING),
    (P.LEAVING, E.LEFT): Rule(P.IDLE),
    (P.LEAVING, E.LEAVE): Rule(P.LEAVING),
    (P.LEAVING, E.TUNNEL_LOST): Rule(P.LEAVING),
    (P.LEAVING, E.PAUSE): Rule(P.LEAVING),
    (P.LEAVING, E.RESUME): Rule(P.LEAVING),
    (P.LEAVING, E.FAILED): Rule(P.ERROR),
    (P.ERROR, E.LEAVE): Rule(P.IDLE),
    (P.IDLE, E.UNINSTALL): Rule(P.UNINSTALLING, _UNDO_TAKEOVER),
    (P.ERROR, E.UNINSTALL): Rule(P.UNINSTALLING, _UNDO_TAKEOVER),
    (P.UNINSTALLING, E.UNINSTALLED): Rule(P.IDLE),
    (P.UNINSTALLING, E.FAILED): Rule(P.ERROR),
    **{(phase, E.LEAVE): rule for phase, rule in _unwind(P.LEAVING).items()},
    **{(phase, E.FAILED): rule for phase, rule in _unwind(P.ERROR).items()},
    (P.CLAIMING, E.CLAIM_REFUSED): Rule(P.ERROR, _UNWIND_TUNNELS),
}


def step(state: InterceptState, event: InterceptEvent) -> tuple[InterceptState, list[Effect]]:
    """Apply one event; the effects end with Notify when the phase changed."""
    rule = TABLE.get((state.phase, event))
    if rule is None:
        raise LocalProtocolError(
            f"intercept: {event.value!r} is not allowed while {state.phase.value}"
        )
    effects = list(rule.effects)
    if state.installed_agent:
        effects += rule.if_installed
    installed = event is E.AGENT_MISSING or (state.installed_agent and rule.to in _STARTING)
    new = InterceptState(rule.to, installed)
    if new.phase is not state.phase:
        effects.append(Notify(new.phase))
    return new, effects
