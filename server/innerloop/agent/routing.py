"""Who gets a caller's connection, or each of its requests: the app, a tunnel client, or
nobody yet (hold). Pure bookkeeping, shared by every tunnel connection of one agent.

Several clients may claim one listen port, each with a filter and a mode (docs/routing.md):
two `route` claims whose filters may overlap cannot coexist (the second is refused naming the
first), nor can two overlapping `mirror` claims of different clients; a mirror never conflicts
with a route. A client has at most one claim per port: claiming again replaces it, and a
reconnect of the same client id takes its claims over (its old tunnel may not have timed out
yet). A port whose claims are all unfiltered routes (at most one, then) is decided per
connection, exactly as before filters existed; any other claimed port per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from innerloop.core.filters import (
    EVERYTHING,
    AppProtocol,
    Mode,
    RequestFilter,
    RequestParts,
    may_overlap,
    request_parts,
)
from innerloop.core.frames import ClaimEntry, Status
from innerloop.core.request import WhilePaused

Owner = TypeVar("Owner")


@dataclass(frozen=True)
class Outcome:
    """The reply to send for a request."""

    status: Status = Status.OK
    holder: str = ""
    reason: str = ""


@dataclass(frozen=True)
class ToApp:
    app_port: int


@dataclass(frozen=True)
class ToClient(Generic[Owner]):
    owner: Owner


@dataclass(frozen=True)
class Hold:
    """The owner is paused with whilePaused ``hold``: wait until it resumes or goes away."""


@dataclass(frozen=True)
class PerRequest:
    """The port has filtered or mirror claims: parse the connection as `protocol` and ask
    `decide_request` (and `mirrors`) for each request; `app_port` serves the unmatched ones."""

    app_port: int
    protocol: AppProtocol


Decision = ToApp | ToClient[Owner] | Hold
ConnectionDecision = Decision[Owner] | PerRequest
Headers = Sequence[tuple[str | bytes, str | bytes]]


@dataclass
class _Claim(Generic[Owner]):
    owner: Owner
    client_id: str
    filter: RequestFilter
    mode: Mode
    protocol: AppProtocol

    @property
    def whole_connection(self) -> bool:
        return self.mode is Mode.ROUTE and self.filter.is_empty

    def conflicts(self, other: _Claim[Owner]) -> bool:
        """Two claims (of different clients) that cannot share a port."""
        return self.mode is other.mode and may_overlap(self.filter, other.filter)


class RouteTable(Generic[Owner]):
    def __init__(self, routes: dict[int, int]) -> None:
        self.routes = dict(routes)  # listen port → app port
        self._claims: dict[int, list[_Claim[Owner]]] = {}  # in the order they were made
        self._paused: dict[Owner, WhilePaused] = {}
        self.version = 0
        """Bumped by every change of the claims or pauses: a `plan` read stays true until."""

    def claim(self, listen_port: int, owner: Owner, client_id: str,
              flt: RequestFilter = EVERYTHING, mode: Mode = Mode.ROUTE,
              protocol: AppProtocol = AppProtocol.AUTO) -> Outcome:
        if listen_port not in self.routes:
            known = ", ".join(str(p) for p in sorted(self.routes)) or "none"
            return Outcome(Status.REJECTED,
                           reason=f"this agent has no route {listen_port} (its routes: {known})")
        new = _Claim(owner, client_id, flt, mode, protocol)
        if protocol is AppProtocol.TCP and not new.whole_connection:
            return Outcome(Status.REJECTED, reason=f"port {listen_port} is claimed as tcp: "
                           "filters and mirror need HTTP (protocol auto, http1 or h2)")
        claims = self._claims.setdefault(listen_port, [])
        mine = next((i for i, held in enumerate(claims)
                     if held.owner == owner or held.client_id == client_id), None)
        for held in claims:
            if held.owner != owner and held.client_id != client_id and held.conflicts(new):
                verb = "intercepted" if held.mode is Mode.ROUTE else "mirrored"
                return Outcome(Status.CONFLICT, holder=held.client_id,
                               reason=f"port {listen_port} is {verb} by {held.client_id} "
                                      f"for {held.filter.describe()}")
        if mine is not None:
            claims[mine] = new  # keeps its place: first claim made, first asked
        else:
            claims.append(new)
        self.version += 1
        return Outcome()

    def release(self, listen_port: int, owner: Owner) -> Outcome:
        """Idempotent; releasing a port someone else claimed leaves their claim."""
        claims = self._claims.get(listen_port, [])
        claims[:] = [held for held in claims if held.owner != owner]
        if not claims:
            self._claims.pop(listen_port, None)
        self.version += 1
        return Outcome()

    def pause(self, owner: Owner, while_paused: WhilePaused) -> Outcome:
        self._paused[owner] = while_paused
        self.version += 1
        return Outcome()

    def resume(self, owner: Owner) -> Outcome:
        self._paused.pop(owner, None)
        self.version += 1
        return Outcome()

    def paused(self, owner: Owner) -> WhilePaused | None:
        """The owner's whilePaused while its debuggee is stopped; None while it runs."""
        return self._paused.get(owner)

    def drop(self, owner: Owner) -> list[int]:
        """The owner's tunnel ended: its claims go. Returns the ports it had claimed."""
        self._paused.pop(owner, None)
        self.version += 1
        dropped = [port for port, claims in self._claims.items()
                   if any(held.owner == owner for held in claims)]
        for port in dropped:
            self.release(port, owner)
        return dropped

    def holder(self, listen_port: int) -> str | None:
        """The client id of the port's first claim (None when unclaimed)."""
        claims = self._claims.get(listen_port)
        return claims[0].client_id if claims else None

    def listing(self) -> list[ClaimEntry]:
        """Every claim, by port then in the order made (the answer to LIST)."""
        return [ClaimEntry(port, held.client_id, held.mode, held.filter, held.protocol,
                           self._paused.get(held.owner))
                for port, claims in sorted(self._claims.items()) for held in claims]

    def decide_connection(self, listen_port: int) -> ConnectionDecision[Owner]:
        """What to do with a new caller connection, before reading any of it."""
        app_port = self.routes[listen_port]
        claims = self._claims.get(listen_port)
        if not claims:
            return ToApp(app_port)
        if all(held.whole_connection for held in claims):
            return self._follow(claims[0].owner, app_port)
        protocol = next((held.protocol for held in claims
                         if held.protocol is not AppProtocol.AUTO), AppProtocol.AUTO)
        return PerRequest(app_port, protocol)

    def decide_request(self, listen_port: int, method: str | bytes, path: str | bytes,
                       headers: Headers) -> Decision[Owner]:
        """Where one request goes: the first route claim whose filter it matches (its owner,
        or the owner's whilePaused), else the app."""
        app_port = self.routes[listen_port]
        parts: RequestParts | None = None  # read once, for every claim
        for held in self._claims.get(listen_port, ()):
            if held.mode is Mode.ROUTE:
                parts = parts or request_parts(method, path, headers)
                if held.filter.matches(parts):
                    return self._follow(held.owner, app_port)
        return ToApp(app_port)

    def plan(self, listen_port: int) -> tuple[list[tuple[RequestFilter, Decision[Owner]]],
                                              list[tuple[RequestFilter, Owner]]]:
        """What `decide_request` and `mirrors` read, in their order, for a caller that matches
        filters its own way (the quick lane): each route claim's filter with where its requests
        go now, each mirror claim's filter with its owner. True until `version` changes."""
        app_port = self.routes[listen_port]
        claims = self._claims.get(listen_port, ())
        return ([(held.filter, self._follow(held.owner, app_port)) for held in claims
                 if held.mode is Mode.ROUTE],
                [(held.filter, held.owner) for held in claims if held.mode is Mode.MIRROR])

    def mirrors(self, listen_port: int, method: str | bytes, path: str | bytes,
                headers: Headers) -> list[Owner]:
        """The owners that get a copy of this request (paused ones too: the caller drops and
        counts their copies, see `paused`)."""
        claims = [held for held in self._claims.get(listen_port, ()) if held.mode is Mode.MIRROR]
        if not claims:
            return []
        parts = request_parts(method, path, headers)
        return [held.owner for held in claims if held.filter.matches(parts)]

    def _follow(self, owner: Owner, app_port: int) -> Decision[Owner]:
        policy = self._paused.get(owner)
        if policy is WhilePaused.CLUSTER:
            return ToApp(app_port)
        if policy is WhilePaused.HOLD:
            return Hold()
        return ToClient(owner)

