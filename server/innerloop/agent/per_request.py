"""A caller connection on a port decided per request: the agent's side of `http1` (and h2).

`PortRouting` answers the router's questions from the agent's `RouteTable`: where a request
goes (waiting while its owner holds it), which mirror claims get a copy, and how to reach the
app or an owner. An owner is reached through a tunnel stream opened like any caller connection
(`AgentTunnel.open`) whose events go to an `OwnerStream` instead of a socket relay: the laptop
sees an ordinary stream carrying HTTP/1.1.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from innerloop.agent.diverted import divert, open_diverted
from innerloop.agent.forward import forward_to_app
from innerloop.agent.http1 import Http1Router
from innerloop.agent.http1_parts import is_h2_preface
from innerloop.agent.mirror import MirrorCounters, MirrorTarget
from innerloop.agent.owner_stream import Ends, OwnerStream
from innerloop.agent.routing import Decision, Hold, RouteTable, ToApp
from innerloop.agent.upstream import READ_SIZE, Destination
from innerloop.core.filters import AppProtocol
from innerloop.core.http1_quick import Matcher, QuickRequest, quick_matcher
from innerloop.tunnel.link import Link
from innerloop.tunnel.relay import SinkFactory, SinkT
from innerloop.tunnel.sockets import tune

log = logging.getLogger(__name__)


class Offering(Protocol):
    """An owner: a tunnel that opens streams to its client (`AgentTunnel`)."""

    client_id: str

    @property
    def link(self) -> Link: ...

    def open(self, listen_port: int, peer: str, make: SinkFactory[SinkT]) -> SinkT: ...


OwnerT = TypeVar("OwnerT", bound=Offering)


@dataclass(frozen=True)
class AppDestination:
    host: str
    port: int

    @property
    def key(self) -> object:
        return "app"

    @property
    def label(self) -> str:
        return f"the app at {self.host}:{self.port}"

    async def connect(self) -> Ends | None:
        try:
            reader, writer = await open_diverted(self.host, self.port)
        except OSError as exc:
            log.warning("app at %s:%d refused the connection: %s", self.host, self.port, exc)
            return None
        tune(writer)
        return reader, writer


@dataclass(frozen=True)
class OwnerDestination:
    owner: Offering
    listen_port: int
    peer: str

    @property
    def key(self) -> object:
        return self.owner

    @property
    def label(self) -> str:
        return f"client {self.owner.client_id}"

    async def connect(self) -> Ends | None:
        if self.owner.link.closed:
            return None
        return self.owner.open(self.listen_port, self.peer, OwnerStream).ends()


@dataclass(frozen=True)
class _Mirror:
    destination: Destination
    counters: MirrorCounters
    paused: bool


class MirrorBook(Generic[OwnerT]):
    """The counters of every mirror claim (listen port, owner), for `innerloop list`."""

    def __init__(self) -> None:
        self._counters: dict[tuple[int, OwnerT], MirrorCounters] = {}

    def counters(self, listen_port: int, owner: OwnerT) -> MirrorCounters:
        counters = self._counters.get((listen_port, owner))
        if counters is None:
            counters = self._counters[listen_port, owner] = MirrorCounters()
        return counters

    def get(self, listen_port: int, owner: OwnerT) -> MirrorCounters | None:
        return self._counters.get((listen_port, owner))

    def forget(self, owner: OwnerT, listen_port: int | None = None) -> None:
        """The owner released the port (``listen_port``) or left (None: every port)."""
        for key in [k for k in self._counters
                    if k[1] == owner and listen_port in (None, k[0])]:
            del self._counters[key]


class PortRouting(Generic[OwnerT]):
    """The `RequestRoutes` of one caller connection on one listen port."""

    def __init__(self, table: RouteTable[OwnerT], book: MirrorBook[OwnerT], listen_port: int,
                 peer: str, app: AppDestination,
                 wait_changed: Callable[[], Awaitable[None]]) -> None:
        self._table = table
        self._book = book
        self._listen_port = listen_port
        self._peer = peer
        self._app = app
        self._wait_changed = wait_changed
        self._owners: dict[OwnerT, OwnerDestination] = {}  # one per owner: decided per request
        self._version = -1  # of the table, when the plans below were read
        self._routes: list[tuple[Matcher, Destination | None]] = []  # None: held
        self._mirrors: list[tuple[Matcher, MirrorTarget]] = []

    async def route_parts(self, method: bytes, path: bytes,
                          headers: list[tuple[bytes, bytes]]) -> Destination:
        """Where a request goes, from its parts (names as sent)."""
        while (destination := self.decide_now(method, path, headers)) is None:
            await self._wait_changed()
        return destination

    def decide_now(self, method: bytes, path: bytes,
                   headers: list[tuple[bytes, bytes]]) -> Destination | None:
        """`route_parts` without waiting: None while the owner holds the request."""
        return self._destination(self._table.decide_request(self._listen_port, method, path,
                                                            headers))

    def decide_quick(self, request: QuickRequest) -> Destination | None:
        """`decide_now` of a quick request (read from its bytes)."""
        if self._version != self._table.version:
            self._read_plan()
        for matches, destination in self._routes:
            if matches(request):
                return destination
        return self._app

    def mirror_parts(self, method: bytes, path: bytes,
                     headers: list[tuple[bytes, bytes]]) -> list[MirrorTarget]:
        """The mirror claims a request (its parts) is copied to."""
        return self._targets(self._table.mirrors(self._listen_port, method, path, headers))

    def mirror_quick(self, request: QuickRequest) -> list[MirrorTarget]:
        """`mirror_parts` of a quick request (read from its bytes)."""
        if self._version != self._table.version:
            self._read_plan()
        if not self._mirrors:
            return []
        return [target for matches, target in self._mirrors if matches(request)]

    def _read_plan(self) -> None:
        """The table's plan for this port, each filter as a `quick_matcher`."""
        routes, mirrors = self._table.plan(self._listen_port)
        self._routes = [(quick_matcher(flt), self._destination(decision))
                        for flt, decision in routes]
        self._mirrors = [(quick_matcher(flt), target) for (flt, _), target
                         in zip(mirrors, self._targets([owner for _, owner in mirrors]))]
        self._version = self._table.version

    def _destination(self, decision: Decision[OwnerT]) -> Destination | None:
        if isinstance(decision, Hold):
            return None
        if isinstance(decision, ToApp):
            return self._app
        return self._owner(decision.owner)

    def _targets(self, owners: list[OwnerT]) -> list[MirrorTarget]:
        if not owners:
            return []
        return [_Mirror(self._owner(owner), self._book.counters(self._listen_port, owner),
                        self._table.paused(owner) is not None) for owner in owners]

    def _owner(self, owner: OwnerT) -> OwnerDestination:
        destination = self._owners.get(owner)
        if destination is None:
            destination = self._owners[owner] = OwnerDestination(owner, self._listen_port,
                                                                 self._peer)
        return destination

    @property
    def app(self) -> Destination:
        return self._app

    async def raw_to_app(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         replay: bytes) -> None:
        await forward_to_app(self._app.host, self._app.port, reader, writer, replay=replay)


async def serve_per_request(routing: PortRouting[OwnerT], reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter, label: str,
                            protocol: AppProtocol = AppProtocol.AUTO) -> None:
    """Serve one caller connection request by request (HTTP/1.1) or stream by stream (HTTP/2
    with prior knowledge): as the claim's protocol says, or, ``auto``, as the first bytes do
    (the HTTP/2 preface). Bytes that are not what was expected go to the app as they are."""
    prefix = b""
    h2: bool | None = protocol is AppProtocol.H2 if protocol is not AppProtocol.AUTO else None
    while h2 is None and (h2 := is_h2_preface(prefix)) is None:
        data = await reader.read(READ_SIZE)
        if not data:
            h2 = False
            break
        prefix += data
    if h2:
        from innerloop.agent.h2route import H2Router  # h2 loads on the first h2 connection:
        # compiled from the zipapp, it costs every agent start ~0.25 s otherwise
        await H2Router(routing, reader, writer, label, prefix).serve()
    else:  # under a `Diverted` protocol: the router's quick lane may take its bytes
        await Http1Router(routing, *divert(reader, writer), label, prefix).serve()
