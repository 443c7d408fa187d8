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
from innerloop.core.value import Value


class Route(Value):
    """The agent sends the requests on `listen_port` (its listen port: the Service's targetPort
    once taken over) that `filter` matches (all: whole connections) to this client's
    `local_port`, or a copy of them in mirror mode; `protocol` says how the port's requests are
    read (from the Service port, or the user's --protocol)."""

    __slots__ = _fields = ("listen_port", "local_port", "filter", "mode", "protocol")

    def __init__(self, listen_port: int, local_port: int, filter: RequestFilter = EVERYTHING,
                 mode: Mode = Mode.ROUTE, protocol: AppProtocol = AppProtocol.AUTO) -> None:
        self.listen_port, self.local_port, self.filter = listen_port, local_port, filter
        self.mode, self.protocol = mode, protocol


@dataclass(frozen=True)  # a dataclass still: the takeover derives its paused form with replace
class Routing:
    route: Route | None = None
    paused: bool = False
    while_paused: WhilePaused = WhilePaused.CLUSTER


FRESH = Routing()
"""What a tunnel has right after its handshake."""


class SendRelease(Value):
    __slots__ = _fields = ("listen_port",)
    __match_args__ = ("listen_port",)

    def __init__(self, listen_port: int) -> None:
        self.listen_port = listen_port


class SendPause(Value):
    """A PAUSE frame (with where new connections go) when `paused`, else a RESUME."""

    __slots__ = _fields = ("paused", "while_paused")
    __match_args__ = ("paused", "while_paused")

    def __init__(self, paused: bool, while_paused: WhilePaused) -> None:
        self.paused, self.while_paused = paused, while_paused


class SendClaim(Value):
    __slots__ = _fields = ("route",)
    __match_args__ = ("route",)

    def __init__(self, route: Route) -> None:
        self.route = route


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
