"""Knowing when kube-proxy sends a Service to the agents, instead of sleeping a fixed time.

The API shows the Service's EndpointSlices carrying the agent's port, but not when kube-proxy on
a node has rewritten its rules from them (at most once per its minSyncPeriod, later on a loaded
node). So each agent is asked to connect to the Service's ClusterIP (a DIAL through its tunnel)
and then how many callers its listen port has accepted (`GET /arrivals/<port>` on its health
port, DIALled on 127.0.0.1): once the count rose, a connection to the ClusterIP reached the
agent, i.e. that node's rules are new. The probe connections carry no bytes; while they run the
intercept's routing is paused (new connections go to the app), so a probe that lands on an agent
never reaches the local process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from innerloop.core.agent_patch import AgentLayout
from innerloop.core.errors import InnerloopError
from innerloop.core.manifest import Manifest
from innerloop.core.report import Report
from innerloop.core.request import WhilePaused
from innerloop.core.routing_plan import Routing
from innerloop.core.service_patch import take_over_service
from innerloop.core.targets import Target
from innerloop.intercepts.tunnels import TunnelSet
from innerloop.k8s.gateway import Gateway

if TYPE_CHECKING:
    from innerloop.tunnel.client import TunnelClient

log = logging.getLogger(__name__)

SETTLE = 2.0
"""The longest wait for kube-proxy to follow a takeover (`Probe` sees when it did), and the
fixed wait where the agents cannot be probed. Only a Service's first intercept waits."""

INTERVAL = 0.03
"""Between two probes of one agent: one DIAL and one tiny HTTP exchange over its tunnel."""
ASK_TIMEOUT = 2.0


class CannotProbe(Exception):
    """This agent cannot answer the probe (an older agent); fall back to waiting."""


async def _dial(client: TunnelClient, host: str, port: int) -> socket.socket:
    """Our end of a connection the agent made from its pod to `host:port`."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=theirs)
    try:
        await client.dial(host, port, reader, writer)
    except BaseException:
        writer.close()
        ours.close()
        raise
    return ours


async def _touch(client: TunnelClient, host: str, port: int) -> None:
    """Connect and close at once: no byte reaches whoever accepted it."""
    (await _dial(client, host, port)).close()


async def _exchange(client: TunnelClient, host: str, port: int, request: bytes) -> bytes:
    """Send `request` to `host:port` from the agent's pod; the answer until it closes."""
    loop = asyncio.get_running_loop()
    ours = await _dial(client, host, port)
    try:
        await loop.sock_sendall(ours, request)
        ours.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := await loop.sock_recv(ours, 4096):
            answer += chunk
        return answer
    finally:
        ours.close()


async def arrivals(client: TunnelClient, health_port: int, listen_port: int) -> int:
    """Callers the agent's `listen_port` has accepted so far."""
    request = (f"GET /arrivals/{listen_port} HTTP/1.1\r\nhost: agent\r\n"
               "connection: close\r\n\r\n").encode()
    answer = await asyncio.wait_for(_exchange(client, "127.0.0.1", health_port, request),
                                    ASK_TIMEOUT)
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200") or not body.strip().isdigit():
        status = head.partition(b"\r\n")[0].decode(errors="replace")
        raise CannotProbe(f"agent {client.name} cannot count arrivals ({status})")
    return int(body)


class Probe:
    """Each agent's count before the Service changed, and the wait for it to rise."""

    def __init__(self, clients: Sequence[TunnelClient], before: Sequence[int],
                 health_port: int, listen_port: int) -> None:
        self.clients = list(zip(clients, before))
        self.health_port = health_port
        self.listen_port = listen_port

    @classmethod
    async def start(cls, clients: Sequence[TunnelClient], health_port: int,
                    listen_port: int) -> Probe | None:
        """Call before the takeover; None if an agent cannot be asked (an older one)."""
        try:
            before = await asyncio.gather(*(arrivals(c, health_port, listen_port)
                                            for c in clients))
        except (CannotProbe, InnerloopError, OSError, asyncio.TimeoutError) as exc:
            log.info("kube-proxy probe unavailable: %s", exc)
            return None
        return cls(clients, before, health_port, listen_port)

    async def wait(self, service: Manifest, service_port: int, timeout: float) -> bool:
        """Until a connection to the Service's ClusterIP from each agent's pod reached an
        agent (True), or `timeout` passed or probing failed (False)."""
        ip = str(service.get("spec", {}).get("clusterIP") or "")
        if not ip or ip == "None":
            return False  # headless: kube-proxy has nothing to do
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await asyncio.wait_for(asyncio.gather(*(
                self._until_routed(client, ip, service_port, before, started + timeout)
                for client, before in self.clients)), timeout)
        except (CannotProbe, InnerloopError, OSError, asyncio.TimeoutError) as exc:
            log.info("kube-proxy probe gave up after %.2f s: %s", loop.time() - started,
                     exc or "timed out")
            return False
        log.info("kube-proxy routes %s:%d to the agents after %.3f s", ip, service_port,
                 loop.time() - started)
        return True

    async def _until_routed(self, client: TunnelClient, ip: str, service_port: int,
                            before: int, deadline: float) -> None:
        # Its own deadline, not only the caller's wait_for: on Python < 3.12 a wait_for inside
        # may swallow the cancellation when its own call completes at that moment, and this
        # loop then ran forever (seen in a CI rehearsal: the probe test hung).
        loop = asyncio.get_running_loop()
        while loop.time() < deadline:
            try:
                await asyncio.wait_for(_touch(client, ip, service_port), ASK_TIMEOUT)
            except (InnerloopError, OSError, asyncio.TimeoutError) as exc:
                log.debug("probe of %s:%d from %s: %s", ip, service_port, client.name, exc)
            if await arrivals(client, self.health_port, self.listen_port) > before:
                return
            await asyncio.sleep(INTERVAL)
        raise asyncio.TimeoutError


async def paused_probe(tunnels: TunnelSet, paused: Routing, health_port: int,
                       listen_port: int) -> Probe | None:
    """The routing paused (a probe's connection that lands on an agent must not reach the
    laptop) and a probe ready to tell when kube-proxy follows the takeover; None when there
    is nothing to probe with (no tunnel, or an agent that cannot count): resume then."""
    clients = [w.client for w in tunnels.workers.values() if w.client is not None]
    if not clients:
        return None
    await tunnels.apply(paused)
    return await Probe.start(clients, health_port, listen_port)


async def take_over(gw: Gateway, target: Target, layout: AgentLayout, tunnels: TunnelSet,
                    desired: Callable[[], Routing], report: Report) -> None:
    """Point the Service's port at the agents' listen port (nothing to do when it does
    already: a warm start) and return once kube-proxy sends it there, with the tunnels at
    `desired()` routing; until then new connections go to the app."""
    listen = layout.listen_port(target.container_port)
    label = target.service_port.label()
    svc = await gw.get_service(target.namespace, target.service)
    if take_over_service(svc, label, listen) == svc:
        return
    paused = dataclasses.replace(desired(), paused=True, while_paused=WhilePaused.CLUSTER)
    probe = await paused_probe(tunnels, paused, layout.health_port, listen)
    if probe is None:  # nothing to probe with: route now, and wait the fixed time below
        await tunnels.apply(desired())
    await gw.update_service(target.namespace, target.service,
                            lambda s: take_over_service(s, label, listen))
    started = asyncio.get_running_loop().time()
    if probe is None or not await probe.wait(svc, target.service_port.port, SETTLE):
        if not await gw.wait_service_port(target.namespace, target.service,
                                          target.service_port.name, listen):
            report("the Service's endpoints have not picked up the change yet; traffic "
                   "follows as soon as they do")
        waited = asyncio.get_running_loop().time() - started
        await asyncio.sleep(max(0.0, SETTLE - waited))
    if probe is not None:
        await tunnels.apply(desired())
