"""The cluster network of one launched process: names, forwarders, the proxy, the env.

`ClusterNetwork` reads the Services the user may see (a snapshot, refreshed on a miss at most
once a second so a new Service appears), answers `resolve(host, port)` for the resolver hook
(over the control socket) and the proxy alike, and gives the child its variables. How the
forwarders' connections leave is the upstream's business: the intercept's agents, or
port-forwards (docs/network.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from innerloop.clusternet.control import CONTROL_DIR, ControlServer, control_path
from innerloop.clusternet.env import hook_env
from innerloop.clusternet.forwarders import Forwarder, Forwarders, OutboundConnection
from innerloop.clusternet.proxy import ProxyServer, proxy_env
from innerloop.clusternet.status import (
    LiveConnection,
    MappedPort,
    NetworkStatus,
    status_path,
    write_status,
)
from innerloop.clusternet.upstreams import (
    PortForwarder,
    PortForwardUpstream,
    ServiceOf,
    TunnelDialer,
    TunnelUpstream,
    Upstream,
)
from innerloop.clusternet.volumes import VolumeMirror
from innerloop.core.cluster_names import (
    DEFAULT_DOMAIN,
    LOOPBACK,
    Cluster,
    ClusterNames,
    ClusterService,
    LocalAddress,
    NotCluster,
    NotFound,
    ResolveResult,
    ServiceKey,
)
from innerloop.core.errors import InnerloopError
from innerloop.core.manifest import Manifest
from innerloop.core.service_links import service_link_env
from innerloop.paths import owned_name, runtime_dir, sweep_dead

log = logging.getLogger(__name__)

REFRESH_INTERVAL = 1.0
"""A miss re-reads the Services at most this often."""
STATUS_DELAY = 0.2
"""Status file writes are coalesced over this long."""
DOMAIN_ENV = "INNERLOOP_CLUSTER_DOMAIN"


class ServiceSource(PortForwarder, Protocol):
    """What the network needs of the gateway (`innerloop.k8s.gateway.Gateway`)."""

    async def visible_services(self, namespace: str) -> tuple[list[Manifest], list[str]]: ...


def cluster_domain(discovered: str | None = None) -> str:
    """$INNERLOOP_CLUSTER_DOMAIN, else what the cluster said (`Gateway.cluster_domain`), else
    cluster.local."""
    return os.environ.get(DOMAIN_ENV) or discovered or DEFAULT_DOMAIN


class ClusterNetwork:
    """Started with `start()` (or `async with`); `aclose()` removes every listener and file."""

    def __init__(self, gateway: ServiceSource, namespace: str,
                 upstream: Callable[[ServiceOf], Upstream], *, via: str,
                 domain: str | None = None, service_links: bool = True,
                 volumes: VolumeMirror | None = None) -> None:
        self._gateway = gateway
        self.volumes = volumes
        self.namespace = namespace
        self.domain = domain or cluster_domain()
        self._via = via
        self._links = service_links
        self._services: dict[ServiceKey, ClusterService] = {}
        self._names = ClusterNames((), namespace, self.domain)
        self._refreshed = float("-inf")
        self._refreshing = asyncio.Lock()
        self._upstream = upstream(self._services.get)
        self.forwarders = Forwarders(self._upstream, on_change=self._changed)
        self._id = owned_name()
        sweep_dead(runtime_dir(CONTROL_DIR))  # sockets and status files of killed runs
        self.control = ControlServer(control_path(self._id), self.resolve)
        self.proxy = ProxyServer(self.resolve)
        self._status = status_path(self._id)
        self._started = time.time()
        self._status_due: asyncio.TimerHandle | None = None

    @classmethod
    def through_agents(cls, gateway: ServiceSource, namespace: str,
                       clients: Callable[[], Sequence[TunnelDialer]], workload: str,
                       service_links: bool = True, domain: str | None = None,
                       volumes: VolumeMirror | None = None) -> ClusterNetwork:
        """Connections leave from the intercepted workload's pods, through its agents."""
        chosen = cluster_domain(domain)
        return cls(gateway, namespace,
                   lambda service_of: TunnelUpstream(clients, service_of, chosen),
                   via=f"the agents of {workload}", domain=chosen, service_links=service_links,
                   volumes=volumes)

    @classmethod
    def through_port_forwards(cls, gateway: ServiceSource, namespace: str,
                              service_links: bool = True, domain: str | None = None,
                              volumes: VolumeMirror | None = None,
                              api_server: tuple[str, int] | None = None) -> ClusterNetwork:
        """Connections go to a Ready pod of the Service through the API server; those to the
        API server's own Service (no pod) straight to `api_server`."""
        return cls(gateway, namespace,
                   lambda service_of: PortForwardUpstream(gateway, service_of, api_server),
                   via="port-forwards to the Services' pods", service_links=service_links,
                   domain=cluster_domain(domain), volumes=volumes)

    async def start(self) -> None:
        await self._refresh()
        try:
            if self.volumes is not None:
                await self.volumes.start()
            await self.control.start()
            await self.proxy.start()
        except BaseException:
            await self.aclose()
            raise
        self._write_status()
        log.info("cluster network for %s: %d services, proxy on %s:%d, control %s",
                 self.namespace, len(self._services), LOOPBACK, self.proxy.port,
                 self.control.path)

    async def __aenter__(self) -> ClusterNetwork:  # noqa: PYI034 (Self needs Python 3.11)
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- names ------------------------------------------------------------------------------

    async def _refresh(self) -> None:
        async with self._refreshing:
            if time.monotonic() - self._refreshed < REFRESH_INTERVAL:
                return  # someone else just did
            manifests, namespaces = await self._gateway.visible_services(self.namespace)
            services = [ClusterService.from_manifest(m) for m in manifests]
            self._services.clear()  # in place: the upstream looks Services up here
            self._services.update((s.key, s) for s in services)
            self._names = ClusterNames(services, self.namespace, self.domain, namespaces)
            self._refreshed = time.monotonic()

    async def resolve(self, host: str, port: int | None) -> ResolveResult:
        """A forwarder for a cluster name; NotFound / NotCluster as `core.cluster_names` says,
        after one more look at the cluster if the last one is over a second old."""
        answer = self._names.lookup(host, port)
        if not isinstance(answer, Cluster) and \
                time.monotonic() - self._refreshed >= REFRESH_INTERVAL:
            try:
                await self._refresh()
            except InnerloopError as exc:  # the snapshot we have still answers
                log.warning("cannot re-read the cluster's Services: %s", exc)
            else:
                answer = self._names.lookup(host, port)
        if isinstance(answer, (NotFound, NotCluster)):
            return answer
        if answer.port is None:
            # gethostbyname: the ClusterIP, which the hook maps to a forwarder at connect().
            svc = self._services.get(answer.service)
            return LocalAddress(svc.cluster_ips[0] if svc and svc.cluster_ips else LOOPBACK, 0)
        return await self.forwarders.address(answer.service, answer.port)

    # -- what the child gets ----------------------------------------------------------------

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """The variables to add to `base` (the child's env otherwise): the kubelet's service
        links (unless `base` sets them), the resolver hook, the proxy."""
        links = service_link_env(self._services.values(), self.namespace, self._links)
        return {
            **{k: v for k, v in links.items() if k not in base},
            **hook_env(self.control.path, base),
            **proxy_env(self.proxy.port),
            **(self.volumes.env() if self.volumes is not None else {}),
        }

    @property
    def services(self) -> list[ClusterService]:
        """The Services in the current snapshot."""
        return list(self._services.values())

    def mappings(self) -> list[Forwarder]:
        return self.forwarders.mappings()

    def connections(self) -> list[OutboundConnection]:
        return self.forwarders.connections()

    def status(self) -> NetworkStatus:
        return NetworkStatus(
            pid=os.getpid(), namespace=self.namespace, via=self._via, started=self._started,
            mapped=[MappedPort(f"{m.service.name}.{m.service.namespace}:{m.port}",
                               f"{m.local.host}:{m.local.port}") for m in self.mappings()],
            connections=[LiveConnection(f"{c.service.name}.{c.service.namespace}:{c.port}",
                                        c.client, c.via, c.since) for c in self.connections()],
        )

    def _changed(self) -> None:
        if self._status_due is None:
            self._status_due = asyncio.get_running_loop().call_later(
                STATUS_DELAY, self._write_status)

    def _write_status(self) -> None:
        self._status_due = None
        status = self.status()
        try:
            write_status(self._status, status)
        except OSError as exc:
            log.warning("cannot write the cluster network's status: %s", exc)
        if status.connections:  # they end without telling us: look again in a second
            self._status_due = asyncio.get_running_loop().call_later(1.0, self._write_status)

    async def aclose(self) -> None:
        if self._status_due is not None:
            self._status_due.cancel()
            self._status_due = None
        await self.control.close()
        await self.proxy.close()
        await self.forwarders.aclose()
        await self._upstream.aclose()
        if self.volumes is not None:
            await self.volumes.aclose()
        with contextlib.suppress(OSError):
            self._status.unlink(missing_ok=True)
