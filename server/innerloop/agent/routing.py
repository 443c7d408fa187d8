"""Who gets a new connection on a route: the app, a tunnel client, or nobody yet (hold).

Pure bookkeeping, shared by every tunnel connection of one agent: at most one client holds a
route; a second client is refused with the holder's id. A reconnect of the same client id takes
its routes over (its old tunnel may not have timed out yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from innerloop.core.frames import Status
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
    """The holder is paused with whilePaused ``hold``: wait until it resumes or goes away."""


Decision = ToApp | ToClient[Owner] | Hold


@dataclass
class _Claim(Generic[Owner]):
    owner: Owner
    client_id: str


class RouteTable(Generic[Owner]):
    def __init__(self, routes: dict[int, int]) -> None:
        self.routes = dict(routes)  # listen port → app port
        self._claims: dict[int, _Claim[Owner]] = {}
        self._paused: dict[Owner, WhilePaused] = {}

    def claim(self, listen_port: int, owner: Owner, client_id: str) -> Outcome:
        if listen_port not in self.routes:
            known = ", ".join(str(p) for p in sorted(self.routes)) or "none"
            return Outcome(Status.REJECTED,
                           reason=f"this agent has no route {listen_port} (its routes: {known})")
        held = self._claims.get(listen_port)
        if held is not None and held.owner != owner and held.client_id != client_id:
            return Outcome(Status.CONFLICT, holder=held.client_id,
                           reason=f"port {listen_port} is intercepted by {held.client_id}")
        self._claims[listen_port] = _Claim(owner, client_id)
        return Outcome()

    def release(self, listen_port: int, owner: Owner) -> Outcome:
        """Idempotent; releasing a route someone else holds leaves it with them."""
        held = self._claims.get(listen_port)
        if held is not None and held.owner == owner:
            del self._claims[listen_port]
        return Outcome()

    def pause(self, owner: Owner, while_paused: WhilePaused) -> Outcome:
        self._paused[owner] = while_paused
        return Outcome()

    def resume(self, owner: Owner) -> Outcome:
        self._paused.pop(owner, None)
        return Outcome()

    def drop(self, owner: Owner) -> list[int]:
        """The owner's tunnel ended: its routes go back to the app. Returns them."""
        self._paused.pop(owner, None)
        dropped = [port for port, held in self._claims.items() if held.owner == owner]
        for port in dropped:
            del self._claims[port]
        return dropped

    def holder(self, listen_port: int) -> str | None:
        held = self._claims.get(listen_port)
        return None if held is None else held.client_id

    def decide(self, listen_port: int) -> Decision[Owner]:
        held = self._claims.get(listen_port)
        if held is None:
            return ToApp(self.routes[listen_port])
        policy = self._paused.get(held.owner)
        if policy is WhilePaused.CLUSTER:
            return ToApp(self.routes[listen_port])
        if policy is WhilePaused.HOLD:
            return Hold()
        return ToClient(held.owner)
