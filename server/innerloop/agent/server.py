"""The agent: listeners on the routes, the tunnel endpoint, the health endpoint.

Every caller connection is decided once, when it arrives: to the app (no live claim, or the
holder is paused with whilePaused ``cluster``), held (paused with ``hold``: decided again on every
change), or offered to the holder's tunnel. An offered stream the client does not accept in
time is served by the app with the bytes already read, so nothing is lost.

The other way round, a client's DIAL is connected from here (`agent/outbound.py`), so the local
process reaches the cluster as this pod does.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import logging
from collections.abc import Coroutine
from typing import Any

from innerloop.agent.forward import forward_to_app
from innerloop.agent.health import serve_health
from innerloop.agent.outbound import DIAL_TIMEOUT, CannotConnect, dial
from innerloop.agent.per_request import AppDestination, MirrorBook, PortRouting, serve_per_request
from innerloop.agent.routing import Hold, Outcome, PerRequest, RouteTable, ToApp
from innerloop.core.filters import Mode
from innerloop.core.frames import ClaimEntry
from innerloop.core.mux import ACCEPT_TIMEOUT, DEFAULT_WINDOW, PEER_TIMEOUT, PING_INTERVAL
from innerloop.core.mux_agent import AgentConnection
from innerloop.core.mux_events import (
    ClaimRequested,
    Closed,
    DialRequested,
    HandshakeDone,
    ListRequested,
    MuxEvent,
    PauseRequested,
    ReleaseRequested,
    ResumeRequested,
    StreamNotAccepted,
)
from innerloop.tunnel.link import Link
from innerloop.tunnel.relay import Relay, SinkFactory, SinkT
from innerloop.tunnel.sockets import abort, peer_label, tune
from innerloop.tunnel.transport import TcpTransport

log = logging.getLogger(__name__)
APP_HOST = "127.0.0.1"
CALLER_BACKLOG = 1024
"""Pending caller connections per route port (the kernel caps it at net.core.somaxconn)."""
CLOSE_GRACE = 3.0  # the most a stopping agent waits for answers on their way
CLOSE_QUIET, CLOSE_POLL = 0.25, 0.05


class Agent:
    def __init__(self, routes: dict[int, int], *, tunnel_port: int, health_port: int,
                 name: str, listen_host: str = "0.0.0.0", tunnel_host: str = "127.0.0.1",
                 accept_timeout: float = ACCEPT_TIMEOUT, peer_timeout: float = PEER_TIMEOUT,
                 ping_interval: float = PING_INTERVAL, window: int = DEFAULT_WINDOW,
                 dial_timeout: float = DIAL_TIMEOUT) -> None:
        self.name = name
        self.table: RouteTable[AgentTunnel] = RouteTable(routes)
        self.tunnel_port = tunnel_port
        self._health_port = health_port
        self._listen_host = listen_host
        self._tunnel_host = tunnel_host
        self.accept_timeout = accept_timeout
        self.peer_timeout = peer_timeout
        self.ping_interval = ping_interval
        self.window = window
        self.dial_timeout = dial_timeout
        self._servers: list[asyncio.Server] = []
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._tunnels: set[AgentTunnel] = set()
        self._last_caller = 0.0
        self.arrivals: collections.Counter[int] = collections.Counter()
        """Caller connections accepted per listen port (the kube-proxy probe reads it)."""
        self.mirror_book: MirrorBook[AgentTunnel] = MirrorBook()

    async def start(self) -> None:
        """Bind every port; raises OSError if one is taken."""
        for listen_port in sorted(self.table.routes):
            # asyncio's default backlog (100) overflows in one stalled second at 100 new
            # callers/s, and each overflow costs a caller a 1-3 s SYN retry.
            self._servers.append(await asyncio.start_server(
                functools.partial(self._on_caller, listen_port), self._listen_host, listen_port,
                backlog=CALLER_BACKLOG))
        self._servers.append(await asyncio.start_server(
            self._on_tunnel, self._tunnel_host, self.tunnel_port))
        self._servers.append(await asyncio.start_server(
            functools.partial(serve_health, arrivals=self.arrivals), self._listen_host,
            self._health_port))
        routes = " ".join(f"{p}->{APP_HOST}:{a}" for p, a in sorted(self.table.routes.items()))
        log.info("ready: routes %s, tunnel %s:%d, health :%d", routes, self._tunnel_host,
                 self.tunnel_port, self._health_port)

    async def close(self, grace: float = CLOSE_GRACE) -> None:
        """Stop listening, let the exchanges in flight finish (at most `grace` s), then say
        goodbye, so clients learn at once instead of by silence."""
        for server in self._servers:
            server.close()
        await self._exchanges_done(grace)
        for tunnel in list(self._tunnels):
            tunnel.link.close("the agent is stopping")
        if self._tunnels:
            await asyncio.wait([asyncio.ensure_future(s.link.wait_closed())
                                for s in self._tunnels], timeout=1.0)

    async def _exchanges_done(self, grace: float) -> None:
        """Until no stream waits for an answer and no bytes moved for `CLOSE_QUIET`: a caller
        mid-request gets its whole answer, an idle keep-alive connection does not wait."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        moved, still_since = -1, loop.time()
        while self._tunnels and (now := loop.time()) < deadline:
            if (now_moved := sum(t.link.moved for t in self._tunnels)) != moved:
                moved, still_since = now_moved, now
            elif now - still_since >= CLOSE_QUIET and not any(
                    t.link.awaiting_answer() for t in self._tunnels):
                return
            await asyncio.sleep(min(CLOSE_POLL, deadline - now))
        if self._tunnels and any(t.link.awaiting_answer() for t in self._tunnels):
            log.warning("stopping with exchanges still in flight after %.1f s", grace)

    def changed(self) -> None:
        """Routes or pause state changed: wake the held callers to decide again."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_changed(self) -> None:
        """Until routes or pause state change next (see `changed`)."""
        await self._changed.wait()

    def listing(self) -> list[ClaimEntry]:
        """The answer to LIST_CLAIMS: every claim, a mirror claim with its counters."""
        entries = []
        for entry in self.table.listing():
            if entry.mode is Mode.MIRROR:
                counted = [c for t in self._tunnels if t.client_id == entry.client_id
                           if (c := self.mirror_book.get(entry.route_port, t)) is not None]
                entry = dataclasses.replace(entry, copied=sum(c.copied for c in counted),
                                            dropped=sum(c.dropped for c in counted))
            entries.append(entry)
        return entries

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, quiet: float, longest: float) -> None:
        """Keep serving after SIGTERM until callers stop coming (`quiet` seconds without a new
        one) or `longest` passed: kube-proxy still sends new connections to a deleted pod for
        a moment, longer on a loaded node, and a closed port would refuse them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + longest
        self._last_caller = loop.time()  # one who connects just after the signal is served too
        while (now := loop.time()) < deadline and now - self._last_caller < quiet:
            await asyncio.sleep(min(quiet, deadline - now))

    async def _on_caller(self, listen_port: int, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        self._last_caller = asyncio.get_running_loop().time()
        self.arrivals[listen_port] += 1
        tune(writer)
        peer = peer_label(writer)
        try:
            while isinstance(decision := self.table.decide_connection(listen_port), Hold):
                await self._changed.wait()
            if isinstance(decision, PerRequest):
                routing = PortRouting(self.table, self.mirror_book, listen_port, peer,
                                      AppDestination(APP_HOST, decision.app_port),
                                      self.wait_changed)
                await serve_per_request(routing, reader, writer, f"caller {peer} on {listen_port}",
                                        decision.protocol)
            elif isinstance(decision, ToApp):
                await forward_to_app(APP_HOST, decision.app_port, reader, writer)
            else:
                decision.owner.offer(listen_port, peer, reader, writer)
        except asyncio.CancelledError:
            abort(writer)  # the agent is stopping

    async def _on_tunnel(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        tunnel = AgentTunnel(self, reader, writer)
        self._tunnels.add(tunnel)
        try:
            await tunnel.run()
        except asyncio.CancelledError:
            pass  # the agent is stopping; close() already said goodbye
        finally:
            self._tunnels.discard(tunnel)


class AgentTunnel:
    """One tunnel connection from one client (several may come and go over time)."""

    def __init__(self, agent: Agent, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        self.agent = agent
        self.client_id = "(no handshake yet)"
        self.conn = AgentConnection(agent.name, now=loop.time(), window=agent.window,
                                    ping_interval=agent.ping_interval,
                                    peer_timeout=agent.peer_timeout,
                                    accept_timeout=agent.accept_timeout)
        self.link = Link(self.conn, TcpTransport(reader, writer), self._on_event,
                         f"tunnel {peer_label(writer)}")

    async def run(self) -> None:
        log.info("%s: connected", self.link.label)
        await self.link.run()

    def offer(self, listen_port: int, peer: str, reader: asyncio.StreamReader,
              writer: asyncio.StreamWriter) -> None:
        """Open a stream for this caller; the client accepts it or the app serves it."""
        self.open(listen_port, peer, Relay).attach(reader, writer)

    def open(self, listen_port: int, peer: str, make: SinkFactory[SinkT]) -> SinkT:
        """Open a stream to the client; its events go to the sink ``make`` builds."""
        stream_id = self.conn.open_stream(listen_port, peer, self.link.now())
        sink = self.link.open_sink(stream_id, make)
        self.link.changed()
        return sink

    def _on_event(self, event: MuxEvent) -> None:
        table = self.agent.table
        if isinstance(event, HandshakeDone):
            self.client_id = event.peer_name
            self.link.label = f"client {self.client_id}"
            log.info("%s: handshake done", self.link.label)
        elif isinstance(event, ClaimRequested):
            outcome = table.claim(event.route_port, self, self.client_id, event.filter,
                                  event.mode, event.protocol)
            self._reply(event.request_id, outcome,
                        f"claim {event.route_port} for {event.local} ({event.mode.value} "
                        f"{event.filter.describe()}, {event.protocol.value})")
        elif isinstance(event, ListRequested):
            self.conn.send_claim_list(event.request_id, self.agent.listing())
        elif isinstance(event, ReleaseRequested):
            outcome = table.release(event.route_port, self)
            self.agent.mirror_book.forget(self, event.route_port)
            self._reply(event.request_id, outcome, f"release {event.route_port}")
        elif isinstance(event, PauseRequested):
            self._reply(event.request_id, table.pause(self, event.while_paused),
                        f"pause (new connections: {event.while_paused.value})")
        elif isinstance(event, ResumeRequested):
            self._reply(event.request_id, table.resume(self), "resume")
        elif isinstance(event, DialRequested):
            relay = self.link.open_relay(event.stream_id)  # holds what arrives before we connect
            self.agent.spawn(self._dial(event, relay))
        elif isinstance(event, StreamNotAccepted):
            log.info("%s: stream %d served by the app: %s", self.link.label, event.stream_id,
                     event.reason)
            detached = self.link.detach_relay(event.stream_id)
            if detached is not None:
                self.agent.spawn(self._fall_back(*detached, event))
        elif isinstance(event, Closed):
            dropped = table.drop(self)
            self.agent.mirror_book.forget(self)
            if dropped:
                log.info("%s: routes %s go back to the app", self.link.label,
                         ", ".join(map(str, dropped)))
            self.agent.changed()

    def _reply(self, request_id: int, outcome: Outcome, what: str) -> None:
        self.conn.reply(request_id, outcome.status, holder=outcome.holder, reason=outcome.reason)
        log.info("%s: %s: %s%s", self.link.label, what, outcome.status.name.lower(),
                 f" ({outcome.reason})" if outcome.reason else "")
        self.agent.changed()

    async def _dial(self, event: DialRequested, relay: Relay) -> None:
        target = f"{event.host}:{event.port}"
        try:
            reader, writer = await dial(event.host, event.port, tunnel_port=self.agent.tunnel_port,
                                        timeout=self.agent.dial_timeout)
        except CannotConnect as exc:
            log.info("%s: stream %d to %s: %s", self.link.label, event.stream_id, target, exc)
            self.link.reset(event.stream_id, str(exc))
            self.link.drop_relay(event.stream_id)
            return
        if not self.link.is_active(event.stream_id):  # the client gave up, or the tunnel closed
            writer.close()
            return
        self.conn.accept(event.stream_id)
        self.link.changed()
        relay.attach(reader, writer)
        log.debug("%s: stream %d to %s", self.link.label, event.stream_id, target)

    async def _fall_back(self, relay: Relay, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter, event: StreamNotAccepted) -> None:
        app_port = self.agent.table.routes[event.route_port]
        await forward_to_app(APP_HOST, app_port, reader, writer, replay=event.replay)
