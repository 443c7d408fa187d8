"""Who holds what on a Service: its agent's claims, for `innerloop list`.

Every tunnel client claims on every replica, so one Ready replica's agent knows them all; it is
asked over a tunnel of its own that claims nothing (a LIST_CLAIMS request, docs/protocol.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace

from innerloop.core.agent_patch import pod_has_agent
from innerloop.core.errors import InnerloopError
from innerloop.core.frames import ClaimEntry
from innerloop.core.targets import ServiceSummary
from innerloop.k8s.gateway import Gateway
from innerloop.tunnel.client import TunnelClient

LIST_TIMEOUT = 10.0


@dataclass(frozen=True)
class PortClaim:
    """One claim on one of the Service's ports."""

    port: str
    """The Service port's label (`80/http`)."""
    claim: ClaimEntry


async def agent_claims(gateway: Gateway, namespace: str, summary: ServiceSummary,
                       client_id: str) -> list[PortClaim]:
    """The claims on the Service's ports taken over; [] without an agent or a Ready replica."""
    if summary.tunnel_port is None or not summary.routes:
        return []
    return await asyncio.wait_for(_ask(gateway, namespace, summary, summary.tunnel_port,
                                       client_id), LIST_TIMEOUT)


async def _ask(gateway: Gateway, namespace: str, summary: ServiceSummary, tunnel_port: int,
               client_id: str) -> list[PortClaim]:
    """The claims, as the first Ready replica's agent has them; a mirror claim's counters are
    the sum over every Ready replica (each agent copies only the requests it receives)."""
    async with gateway.watch_ready_pods(namespace, summary.selector) as watch:
        pods = await anext(watch)
    names = [name for name, manifest in sorted(pods.items()) if pod_has_agent(manifest)]
    if not names:
        return []
    first, *others = await asyncio.gather(*(
        ask_agent(gateway, namespace, pod, tunnel_port, f"{client_id} (list)")
        for pod in names),
        return_exceptions=True)
    if isinstance(first, BaseException):
        raise first
    entries = [_summed(e, [o for o in others if not isinstance(o, BaseException)])
               for e in first]
    labels = dict(summary.routes)
    return [PortClaim(labels[e.route_port], e) for e in entries if e.route_port in labels]


async def ask_agent(gateway: Gateway, namespace: str, pod: str, tunnel_port: int,
                    client_id: str) -> tuple[ClaimEntry, ...]:
    """One agent's claim table, over a tunnel of our own that claims nothing."""
    client = TunnelClient(await gateway.port_forward(namespace, pod, tunnel_port), client_id,
                          name=pod)
    await client.start()
    try:
        return await client.list_claims()
    finally:
        await client.aclose("listed the claims")


def _summed(entry: ClaimEntry, others: list[tuple[ClaimEntry, ...]]) -> ClaimEntry:
    """A mirror claim's counters added up over the other replicas' answers."""
    if entry.copied is None and entry.dropped is None:
        return entry
    same = [o for listing in others for o in listing
            if (o.route_port, o.client_id, o.mode) == (entry.route_port, entry.client_id,
                                                       entry.mode)]
    return replace(entry, copied=(entry.copied or 0) + sum(o.copied or 0 for o in same),
                   dropped=(entry.dropped or 0) + sum(o.dropped or 0 for o in same))


async def claims_table(gateway: Gateway, namespace: str, services: Sequence[ServiceSummary],
                       client_id: str) -> tuple[list[str], list[str]]:
    """`innerloop list`'s table of claims (no lines without any), and one line per Service
    whose agent could not be asked."""
    rows, problems = [], []
    for s in services:
        try:
            found = await agent_claims(gateway, namespace, s, client_id)
        except (InnerloopError, OSError, TimeoutError) as exc:
            problems.append(f"{s.name}: cannot ask its agent for its claims: "
                            f"{exc or 'timed out'}")
            continue
        for c in found:
            e = c.claim
            paused = "" if e.paused is None else f" (paused: {e.paused.value})"
            counted = ("" if not (e.copied or e.dropped)  # nothing to say until a copy came
                       else f" (copied {e.copied or 0}, dropped {e.dropped or 0})")
            rows.append(f"{s.name + ':' + c.port:32} {e.client_id:32} {e.mode.value:7} "
                        f"{e.filter.describe()}{paused}{counted}")
    header = f"{'INTERCEPTED PORT':32} {'BY':32} {'MODE':7} REQUESTS"
    return ([header, *rows] if rows else []), problems
