"""What one tunnel must be told to go from the routing an agent has to the routing we want.

The session keeps a *wanted* routing for all of an intercept's tunnels; each tunnel converges to
it on connect, on reconnect and on every change, by the steps `plan` returns. Facts about the
agent this relies on: a fresh tunnel holds no route and is not paused; pause is per tunnel, not
per route, so it survives a release and a new claim on the same tunnel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Policy = Literal["cluster", "hold"]


@dataclass(frozen=True)
class Claim:
    route_port: int
    """The agent's listen port (the Service's targetPort once taken over)."""
    local_port: int


@dataclass(frozen=True)
class Routing:
    claim: Claim | None = None
    paused: bool = False
    policy: Policy = "cluster"


FRESH = Routing()
"""What a tunnel has right after its handshake."""


@dataclass(frozen=True)
class ReleaseRoute:
    route_port: int


@dataclass(frozen=True)
class SetPaused:
    paused: bool
    policy: Policy


@dataclass(frozen=True)
class ClaimRoute:
    claim: Claim


Step = ReleaseRoute | SetPaused | ClaimRoute


def plan(have: Routing, want: Routing) -> list[Step]:
    """The requests that turn `have` into `want`, in the order to send them.

    A pause goes before a claim, so a tunnel that reconnects while the debuggee is stopped never
    routes a new connection to it; a release goes first, so a changed claim never holds two.
    """
    steps: list[Step] = []
    if have.claim is not None and have.claim != want.claim:
        steps.append(ReleaseRoute(have.claim.route_port))
    if want.paused != have.paused or (want.paused and want.policy != have.policy):
        steps.append(SetPaused(want.paused, want.policy))
    if want.claim is not None and want.claim != have.claim:
        steps.append(ClaimRoute(want.claim))
    return steps
