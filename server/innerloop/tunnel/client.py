"""The laptop end of one tunnel (docs/architecture.md, "Tunnel client").

Each stream the agent opens is relayed to ``127.0.0.1:<local_port>`` of the claim. If that
port refuses, the stream is declined (RESET before ACCEPT): nothing has reached the caller yet,
so the agent serves the connection from the app in the pod instead of failing it.

The other way, ``dial`` relays a local connection to a cluster address that the agent connects
from its pod (docs/network.md, "Outbound streams").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from innerloop.core.filters import EVERYTHING, AppProtocol, Mode, RequestFilter
from innerloop.core.frames import ClaimEntry, Status
from innerloop.core.mux import DEFAULT_WINDOW, PEER_TIMEOUT, PING_INTERVAL
from innerloop.core.mux_client import ClientConnection
from innerloop.core.mux_events import (
    ClaimsListed,
    Closed,
    HandshakeDone,
    MuxEvent,
    RequestDone,
    StreamAccepted,
    StreamOpened,
    StreamReset,
)
from innerloop.core.request import WhilePaused
from innerloop.tunnel.errors import DialFailed, InterceptConflict, TunnelError
from innerloop.tunnel.link import Link
from innerloop.tunnel.relay import Relay, StreamTap
from innerloop.tunnel.transport import Transport

log = logging.getLogger(__name__)

REFUSED_LOG_INTERVAL = 10.0
"""Seconds between warnings that the local port refuses connections."""


class TunnelClient:
    def __init__(self, transport: Transport, client_id: str, name: str = "agent", *,
                 window: int = DEFAULT_WINDOW, ping_interval: float = PING_INTERVAL,
                 peer_timeout: float = PEER_TIMEOUT, local_host: str = "127.0.0.1",
                 tap: Callable[[StreamOpened], StreamTap | None] | None = None) -> None:
        self.client_id = client_id
        self.name = name
        self.agent_name: str | None = None  # from the agent's WELCOME (its pod name)
        self._transport = transport
        self._window = window
        self._ping_interval = ping_interval
        self._peer_timeout = peer_timeout
        self._local_host = local_host
        self._tap = tap
        """Given each accepted stream, what sees its bytes (the editor's request log)."""
        self._routes: dict[int, int] = {}
        self._replies: dict[int, asyncio.Future[RequestDone | ClaimsListed]] = {}
        self._dials: dict[int, _Dial] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._conn: ClientConnection | None = None
        self._link: Link | None = None
        self._run: asyncio.Future[str] | None = None
        self._handshake: asyncio.Future[None] | None = None
        self._refused_logged = float("-inf")

    @property
    def routes(self) -> dict[int, int]:
        """Claimed route port → local port."""
        return dict(self._routes)

    @property
    def rtt(self) -> float | None:
        return None if self._link is None else self._link.conn.rtt

    async def start(self) -> None:
        """Versioned handshake; raises TunnelError if the agent refuses or does not answer."""
        loop = asyncio.get_running_loop()
        self._conn = ClientConnection(self.client_id, now=loop.time(), window=self._window,
                                      ping_interval=self._ping_interval,
                                      peer_timeout=self._peer_timeout)
        self._handshake = loop.create_future()
        self._link = Link(self._conn, self._transport, self._on_event, self.name)
        self._run = asyncio.ensure_future(self._link.run())
        either: list[asyncio.Future[Any]] = [self._handshake, asyncio.shield(self._run)]
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not self._handshake.done() or self._handshake.exception() is not None:
            raise TunnelError(f"tunnel to {self.name} failed: {await self.wait_closed()}")
        log.info("%s: tunnel up to agent %s", self.name, self.agent_name)

    async def claim(self, route_port: int, local_port: int, flt: RequestFilter = EVERYTHING,
                    mode: Mode = Mode.ROUTE, protocol: AppProtocol = AppProtocol.AUTO) -> None:
        """Route the requests on the agent's ``route_port`` that ``flt`` matches (or, in
        mirror mode, a copy of them) to ``local_port`` here; claiming again replaces the claim.

        Raises InterceptConflict naming the holder and what they claimed if another client's
        claim may take the same requests.
        """
        self._routes[route_port] = local_port
        try:
            done = await self._request(lambda c: c.claim(
                route_port, f"{self._local_host}:{local_port}", flt, mode, protocol))
            assert isinstance(done, RequestDone)
            if done.status is Status.CONFLICT:
                held = [e for e in await self.list_claims()
                        if e.route_port == route_port and e.client_id == done.holder]
                raise InterceptConflict(route_port, done.holder,
                                        *((held[0].filter, held[0].mode) if held else ()))
        except BaseException:
            self._routes.pop(route_port, None)
            raise

    async def list_claims(self) -> tuple[ClaimEntry, ...]:
        """Every claim the agent has, from any client (for `innerloop list`)."""
        listed = await self._request(lambda c: c.list_claims())
        assert isinstance(listed, ClaimsListed)
        return listed.entries

    async def release(self, route_port: int) -> None:
        """New connections on ``route_port`` go to the app again; streams already here finish."""
        await self._request(lambda c: c.release(route_port))
        self._routes.pop(route_port, None)

    async def set_paused(self, paused: bool,
                         while_paused: WhilePaused = WhilePaused.CLUSTER) -> None:
        """While paused the agent serves new connections from the app (cluster) or holds them."""
        if paused:
            await self._request(lambda c: c.pause(while_paused))
        else:
            await self._request(lambda c: c.resume())

    async def dial(self, host: str, port: int, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> None:
        """Relay a local connection to ``host:port``, connected by the agent from its pod.

        Returns once the agent connected: the relay then owns the socket (and closes it when
        both directions ended, or aborts it on a reset). Raises DialFailed with the agent's
        reason if it could not connect, TunnelError if the tunnel is down; the socket is then
        untouched and still the caller's. Cancelling the call withdraws the dial.
        """
        link, conn = self._link, self._conn
        if link is None or conn is None:
            raise TunnelError("start() the tunnel first")
        if link.closed:
            raise TunnelError(f"tunnel to {self.name} closed: {conn.close_reason}")
        stream_id = conn.dial(host, port)
        pending = _Dial(host, port, reader, writer, asyncio.get_running_loop().create_future())
        self._dials[stream_id] = pending
        link.changed()
        try:
            await pending.connected
        except asyncio.CancelledError:
            if self._dials.pop(stream_id, None) is not None:
                link.reset(stream_id, "the local connection gave up")
            raise

    async def drain(self, timeout: float) -> bool:
        """Wait (up to `timeout`) until no stream is relayed here; True when none is left.

        Called after `release`, so connections already on the laptop finish instead of being
        reset when the tunnel closes.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._link is not None and (self._link.relaying(opened_by_peer=True)
                                          or self._tasks):
            if self._link.closed or loop.time() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def aclose(self, reason: str = "the client left") -> None:
        """Say goodbye: the agent drops our routes and resets streams still on this side."""
        if self._link is not None and self._run is not None:
            if not self._link.closed:
                self._link.close(reason)
            await asyncio.shield(self._run)
        else:
            await self._transport.close()

    async def wait_closed(self) -> str:
        """Wait until the tunnel ends; returns why (agent silent, agent said goodbye, …)."""
        if self._run is None:
            raise TunnelError("the tunnel was never started")
        return await asyncio.shield(self._run)

    # -- internals ----------------------------------------------------------------------------

    async def _request(
            self, command: Callable[[ClientConnection], int]) -> RequestDone | ClaimsListed:
        """Send one request and wait for its reply; REJECTED becomes a TunnelError."""
        if self._link is None or self._conn is None:
            raise TunnelError("start() the tunnel first")
        if self._link.closed:
            raise TunnelError(f"tunnel to {self.name} closed: {self._conn.close_reason}")
        reply: asyncio.Future[RequestDone | ClaimsListed] = (
            asyncio.get_running_loop().create_future())
        self._replies[command(self._conn)] = reply
        self._link.changed()
        done = await reply
        if isinstance(done, RequestDone) and done.status is Status.REJECTED:
            raise TunnelError(f"agent {self.agent_name} refused: {done.reason}")
        return done

    def _on_event(self, event: MuxEvent) -> None:
        assert self._link is not None and self._handshake is not None
        if isinstance(event, HandshakeDone):
            self.agent_name = event.peer_name
            self._handshake.set_result(None)
        elif isinstance(event, (RequestDone, ClaimsListed)):
            self._replies.pop(event.request_id).set_result(event)
        elif isinstance(event, StreamOpened):
            relay = self._link.open_relay(event.stream_id)
            task = asyncio.ensure_future(self._serve_stream(event, relay))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(event, StreamAccepted) and event.stream_id in self._dials:
            dialled = self._dials.pop(event.stream_id)
            # attached before any later event of this batch, so no byte can miss the relay
            self._link.open_relay(event.stream_id).attach(dialled.reader, dialled.writer)
            dialled.connected.set_result(None)
        elif isinstance(event, StreamReset) and event.stream_id in self._dials:
            dialled = self._dials.pop(event.stream_id)
            dialled.connected.set_exception(
                DialFailed(dialled.host, dialled.port, f"agent {self.agent_name}", event.reason))
        elif isinstance(event, Closed):
            error = TunnelError(f"tunnel to {self.name} closed: {event.reason}")
            if not self._handshake.done():
                self._handshake.set_exception(error)
                self._handshake.exception()  # start() reports it; do not warn as unretrieved
            for reply in self._replies.values():
                if not reply.done():  # a caller that was cancelled meanwhile left it done
                    reply.set_exception(error)
            self._replies.clear()

    async def _serve_stream(self, opened: StreamOpened, relay: Relay) -> None:
        link, conn = self._link, self._conn
        assert link is not None and conn is not None
        local_port = self._routes.get(opened.route_port)
        if local_port is None:
            self._decline(opened, f"port {opened.route_port} is not claimed by this client")
            return
        try:  # the relay is the socket's protocol from the start: no stream pair in between
            transport, _ = await asyncio.get_running_loop().create_connection(
                lambda: relay, self._local_host, local_port)
        except OSError as exc:
            now = asyncio.get_running_loop().time()
            if now - self._refused_logged >= REFUSED_LOG_INTERVAL:  # once, not per request
                self._refused_logged = now
                log.warning("%s: %s:%d refused a connection (%s); the app in the pod serves "
                            "such requests until your process listens", self.name,
                            self._local_host, local_port, exc.strerror or exc)
            self._decline(opened, f"{self._local_host}:{local_port} refused the connection: {exc}")
            return
        if not link.conn.is_active(opened.stream_id) or link.closed:
            transport.close()  # the agent gave up waiting and served it from the app
            link.drop_relay(opened.stream_id)
            return
        conn.accept(opened.stream_id)
        link.changed()
        if self._tap is not None:
            relay.tap = self._tap(opened)
        relay.start()
        log.debug("%s: stream %d from %s → %s:%d", self.name, opened.stream_id, opened.peer,
                  self._local_host, local_port)

    def _decline(self, opened: StreamOpened, reason: str) -> None:
        """RESET before ACCEPT: the agent serves the connection from the app instead."""
        assert self._link is not None
        self._link.reset(opened.stream_id, reason)
        self._link.drop_relay(opened.stream_id)


@dataclass
class _Dial:
    """A DIAL waiting for the agent's ACCEPT; the socket is attached the moment it comes."""

    host: str
    port: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    connected: asyncio.Future[None]
