"""What one tunnel must be told to go from the routing an agent has to the routing we want.

The intercept keeps a *wanted* routing for all of its tunnels; each tunnel converges to it on
connect, on reconnect and on every change, by sending the frames `plan` returns. Facts about the
agent this relies on: a fresh tunnel holds no route and is not paused; pause is per tunnel, not
per route, so it survives a release and a new claim on the same tunnel.
"""

from __future__ import annotations

from dataclasses import dataclass

from innerloop.core.filters import EVERYTHING, AppProtocol, Mode, RequestFilter
from innerloop.core.request import WhilePaused


@dataclass(frozen=True)
class Route:
    """The agent sends the requests on `listen_port` that `filter` matches (all: whole
    connections) to this client's `local_port`, or a copy of them in mirror mode."""

    listen_port: int
    """The agent's listen port (the Service's targetPort once taken over)."""
    local_port: int
    filter: RequestFilter = EVERYTHING
    mode: Mode = Mode.ROUTE
    protocol: AppProtocol = AppProtocol.AUTO
    """How the port's requests are read (from the Service port, or the user's --protocol)."""


@dataclass(frozen=True)
class Routing:
    route: Route | None = None
    paused: bool = False
    while_paused: WhilePaused = WhilePaused.CLUSTER


FRESH = Routing()
"""What a tunnel has right after its handshake."""


@dataclass(frozen=True)
class SendRelease:
    listen_port: int


@dataclass(frozen=True)
class SendPause:
    """A PAUSE frame (with where new connections go) when `paused`, else a RESUME."""

    paused: bool
    while_paused: WhilePaused


@dataclass(frozen=True)
class SendClaim:
    route: Route


Step = SendRelease | SendPause | SendClaim


def plan(have: Routing, want: Routing) -> list[Step]:
    """The frames that turn `have` into `want`, in the order to send them.

    A pause goes before a claim, so a tunnel that reconnects while the debuggee is stopped never
    routes a new connection to it; a release goes first, so a changed route never holds two.
    """
    steps: list[Step] = []
    if have.route is not None and have.route != want.route:
        steps.append(SendRelease(have.route.listen_port))
    if want.paused != have.paused or (want.paused and want.while_paused != have.while_paused):
        steps.append(SendPause(want.paused, want.while_paused))
    if want.route is not None and want.route != have.route:
        steps.append(SendClaim(want.route))
    return steps
