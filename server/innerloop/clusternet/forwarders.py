"""One loopback listener per cluster Service port, made the first time a name resolves to it.

What the resolver hook and the proxy hand out for a cluster name is the address of one of
these; every connection accepted there goes to the upstream (the agent's tunnel, or a
port-forward). docs/network.md, "Forwarders and upstreams".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from innerloop.clusternet.upstreams import Upstream, UpstreamError
from innerloop.core.cluster_names import LOOPBACK, LocalAddress, ServiceKey
from innerloop.tunnel.sockets import abort, peer_label, tune

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Forwarder:
    """One forwarder: the Service port and where it listens."""

    service: ServiceKey
    port: int
    local: LocalAddress


@dataclass
class OutboundConnection:
    """One outbound connection of the local process, while it lasts."""

    service: ServiceKey
    port: int
    client: str
    via: str
    since: float
    writer: asyncio.StreamWriter

    @property
    def live(self) -> bool:
        return not self.writer.is_closing()


class Forwarders:
    """The listeners, their connections, and nothing else: closing ends them all."""

    def __init__(self, upstream: Upstream, host: str = LOOPBACK,
                 on_change: Callable[[], None] = lambda: None) -> None:
        self._upstream = upstream
        self._host = host
        self._on_change = on_change
        self._servers: dict[tuple[ServiceKey, int], asyncio.Server] = {}
        self._mappings: dict[tuple[ServiceKey, int], Forwarder] = {}
        self._lock = asyncio.Lock()
        self._handlers: set[asyncio.Task[None]] = set()
        self._connections: list[OutboundConnection] = []
        self._closed = False

    async def address(self, service: ServiceKey, port: int) -> LocalAddress:
        """The forwarder of `service:port`, listening from now on."""
        key = (service, port)
        if key not in self._mappings:
            async with self._lock:
                if self._closed:
                    raise UpstreamError("the cluster network is closed")
                if key not in self._mappings:
                    server = await asyncio.start_server(
                        lambda r, w: self._accept(service, port, r, w), self._host, 0)
                    local = LocalAddress(self._host, int(server.sockets[0].getsockname()[1]))
                    self._servers[key] = server
                    self._mappings[key] = Forwarder(service, port, local)
                    log.info("forwarder %s:%d → %s.%s:%d", local.host, local.port,
                             service.name, service.namespace, port)
                    self._on_change()
        return self._mappings[key].local

    def mappings(self) -> list[Forwarder]:
        return sorted(self._mappings.values(), key=lambda m: (m.service, m.port))

    def connections(self) -> list[OutboundConnection]:
        """The outbound connections still open."""
        self._connections = [c for c in self._connections if c.live]
        return list(self._connections)

    async def _accept(self, service: ServiceKey, port: int, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        tune(writer)
        where = f"{service.name}.{service.namespace}:{port}"
        try:
            via = await self._upstream.open(service, port, reader, writer)
        except UpstreamError as exc:
            log.warning("%s: %s", where, exc)
            abort(writer)  # the local client sees a reset: the closest to "refused" we have
            return
        except asyncio.CancelledError:
            abort(writer)
            return
        except Exception:
            log.exception("%s: the upstream failed", where)
            abort(writer)
            return
        finally:
            self._handlers.discard(task)
        log.debug("%s: %s connected via %s", where, peer_label(writer), via)
        self._connections.append(
            OutboundConnection(service, port, peer_label(writer), via, time.time(), writer))
        self._on_change()

    async def aclose(self) -> None:
        """Stop listening and reset every connection still open."""
        async with self._lock:
            self._closed = True
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        for conn in self.connections():
            abort(conn.writer)
        for server in servers:
            await server.wait_closed()
