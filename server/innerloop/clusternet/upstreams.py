"""Where a forwarder's connections go: through the intercept's agents, or a port-forward.

Each accepted local connection is handed to `Upstream.open(key, port, reader, writer)`, which
connects it to the Service's port and owns the socket from then on (closes it when done), or
raises `UpstreamError` with one line, leaving the socket to the caller (docs/network.md,
"Forwarders and upstreams").
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from innerloop.core.cluster_names import ClusterService, ServiceKey
from innerloop.core.errors import InnerloopError
from innerloop.core.manifest import Manifest
from innerloop.core.service_links import ready_pod_ports
from innerloop.tunnel.errors import DialFailed
from innerloop.tunnel.sockets import abort
from innerloop.tunnel.transport import TcpTransport, Transport

log = logging.getLogger(__name__)
READ_SIZE = 64 * 1024

API_SERVICE = ServiceKey("default", "kubernetes")
"""The API server's Service: its endpoints are the API server itself, no pod."""
CONNECT_TIMEOUT = 10.0

ServiceOf = Callable[[ServiceKey], "ClusterService | None"]
"""The Service a key names in the current snapshot (None: gone)."""


class UpstreamError(Exception):
    """No connection to the Service; the message says why, in one line."""


class Upstream(Protocol):
    async def open(self, key: ServiceKey, port: int, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> str:
        """Connect the local connection to `key:port`; returns where it went (for status)."""
        ...

    async def aclose(self) -> None:
        """End what the upstream itself still relays."""
        ...


class TunnelDialer(Protocol):
    """What TunnelUpstream needs of a tunnel client (`innerloop.tunnel.client.TunnelClient`)."""

    name: str

    async def dial(self, host: str, port: int, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> None: ...


class TunnelUpstream:
    """An outbound stream on one of the intercept's tunnels (round-robin over the connected
    ones): the agent connects from the workload's pod, so the Service sees the pod's IP, and
    NetworkPolicy and egress apply as to the workload."""

    def __init__(self, clients: Callable[[], Sequence[TunnelDialer]], service_of: ServiceOf,
                 domain: str) -> None:
        self._clients = clients
        self._service_of = service_of
        self._domain = domain
        self._turn = itertools.count()

    def _host(self, key: ServiceKey) -> str:
        """The ClusterIP (no DNS lookup in the pod), else the name (headless)."""
        svc = self._service_of(key)
        return svc.cluster_ips[0] if svc is not None and svc.cluster_ips else key.dns_name(
            self._domain)

    async def open(self, key: ServiceKey, port: int, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> str:
        clients = list(self._clients())
        if not clients:
            raise UpstreamError("no tunnel to the workload's agent is connected")
        host = self._host(key)
        first = next(self._turn)
        why = ""
        for i in range(len(clients)):  # a tunnel that just went down: try the next one
            client = clients[(first + i) % len(clients)]
            try:
                await client.dial(host, port, reader, writer)
            except DialFailed as exc:  # the agent's answer: another agent would say the same
                raise UpstreamError(str(exc)) from exc
            except InnerloopError as exc:
                why = str(exc)
                continue
            return f"agent {client.name}"
        raise UpstreamError(why)

    async def aclose(self) -> None:
        """Nothing of ours: the tunnels' relays end with the tunnels."""


class PortForwarder(Protocol):
    """What PortForwardUpstream needs of the gateway (`innerloop.k8s.gateway.Gateway`)."""

    async def endpoint_slices(self, namespace: str, service: str) -> list[Manifest]: ...

    async def port_forward(self, namespace: str, pod: str, port: int) -> Transport: ...


class PortForwardUpstream:
    """A port-forward through the API server to a Ready pod behind the Service (round-robin),
    at the targetPort: no agent and no change to the cluster (`innerloop run`). The API
    server's own Service (`default/kubernetes`) has no pod: given `api_server` (the kubeconfig's
    host, port), its connections go straight there, TLS passed through untouched."""

    def __init__(self, gateway: PortForwarder, service_of: ServiceOf,
                 api_server: tuple[str, int] | None = None) -> None:
        self._gateway = gateway
        self._api_server = api_server
        self._service_of = service_of
        self._turn = itertools.count()
        self._pipes: set[asyncio.Task[None]] = set()

    async def open(self, key: ServiceKey, port: int, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> str:
        svc = self._service_of(key)
        named = [p.name for p in svc.ports if p.port == port] if svc is not None else []
        if not named:
            raise UpstreamError(f"service {key.name}.{key.namespace} has no port {port}")
        if key == API_SERVICE and self._api_server is not None:
            return await self._to_api_server(reader, writer)
        try:
            slices = await self._gateway.endpoint_slices(key.namespace, key.name)
            pods = ready_pod_ports(slices, named[0])
            if not pods:
                raise UpstreamError(
                    f"service {key.name}.{key.namespace} has no Ready pod behind port {port}")
            target = pods[next(self._turn) % len(pods)]
            transport = await self._gateway.port_forward(key.namespace, target.pod, target.port)
        except InnerloopError as exc:
            raise UpstreamError(str(exc)) from exc
        self._pipe(transport, reader, writer, f"pod/{target.pod}")
        return f"pod/{target.pod}:{target.port}"

    async def _to_api_server(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> str:
        assert self._api_server is not None
        host, port = self._api_server
        try:
            transport = await asyncio.wait_for(TcpTransport.connect(host, port), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as exc:
            raise UpstreamError(f"cannot reach the API server at {host}:{port}: "
                                f"{exc or 'timed out'}") from exc
        self._pipe(transport, reader, writer, f"API server {host}:{port}")
        return f"API server {host}:{port}"

    def _pipe(self, transport: Transport, reader: asyncio.StreamReader,
              writer: asyncio.StreamWriter, label: str) -> None:
        task = asyncio.ensure_future(pipe(transport, reader, writer, label))
        self._pipes.add(task)
        task.add_done_callback(self._pipes.discard)

    async def aclose(self) -> None:
        """End every connection still piped."""
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)


async def pipe(transport: Transport, reader: asyncio.StreamReader,
               writer: asyncio.StreamWriter, label: str) -> None:
    """Bytes both ways between a local socket and a Transport until the far end ends.

    A port-forward has no half-close: the local side's EOF is kept to itself and the pipe
    lasts until the pod's side closes (as `kubectl port-forward` does); a failure on either
    side resets the local connection."""
    async def up() -> None:
        while data := await reader.read(READ_SIZE):
            await transport.send(data)

    async def down() -> None:
        while data := await transport.recv():
            writer.write(data)
            await writer.drain()

    sending, receiving = asyncio.ensure_future(up()), asyncio.ensure_future(down())
    try:
        await asyncio.wait([sending, receiving], return_when=asyncio.FIRST_COMPLETED)
        if sending.done() and sending.exception() is None:  # local EOF: wait for the pod
            await asyncio.wait([receiving])
        if receiving.done() and receiving.exception() is None:
            with contextlib.suppress(OSError):
                if writer.can_write_eof():
                    writer.write_eof()
            writer.close()
        else:
            failed = sending if sending.done() and sending.exception() else receiving
            log.info("%s: connection ended: %s", label,
                     failed.exception() if failed.done() else "cancelled")
            abort(writer)
    except asyncio.CancelledError:
        abort(writer)
        raise
    finally:
        for task in (sending, receiving):
            task.cancel()
        await asyncio.gather(sending, receiving, return_exceptions=True)
        with contextlib.suppress(OSError, InnerloopError):
            await transport.close()
