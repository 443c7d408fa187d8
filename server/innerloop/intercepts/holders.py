"""Who holds an intercept of a workload's Service right now, before `uninstall` pulls the agent
from under them: the agent's claim table (any machine; a LIST_CLAIMS request over a tunnel of
our own that claims nothing) and this machine's registry (whichever program holds it here)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from innerloop.core.advice import Fix, advise
from innerloop.core.agent_patch import agent_layout, pod_has_agent
from innerloop.core.client_id import pid_on_host
from innerloop.core.errors import InnerloopError, UserError
from innerloop.core.manifest import Manifest
from innerloop.core.mux import PEER_TIMEOUT, PING_INTERVAL
from innerloop.core.rollout import pod_ready
from innerloop.intercepts import registry
from innerloop.intercepts.claims import ask_agent
from innerloop.k8s.gateway import Gateway
from innerloop.paths import pid_alive

log = logging.getLogger(__name__)

ASK_TIMEOUT = 10.0
DEAD_CLAIM_WAIT = 3 * PEER_TIMEOUT
"""How long a claim of a process of this machine that is gone may stay: its agent drops a
silent client after PEER_TIMEOUT, later on a loaded node. Waited out, not ignored: another
machine may carry the same host name."""


async def holders(gw: Gateway, workload: Manifest, service: str, client_id: str) -> list[str]:
    """Every other client holding a claim on the workload's agent, or recorded here as holding
    `service`; sorted, each named as the refusal shows it."""
    namespace = workload["metadata"]["namespace"]
    found = set(await _claimants(gw, workload, client_id))
    for entry in registry.find(namespace, service):
        if entry.pid != os.getpid():
            found.discard(entry.holder)
            found.add(f"{entry.holder} ({entry.tool} pid {entry.pid} on this machine)")
    return sorted(found)


def held_refusal(service: str, namespace: str, held: list[str]) -> UserError:
    """Why `uninstall` will not pull the agent from under `held` (and, on the CLI only, --force)."""
    return UserError(f"{service}.{namespace} is intercepted by {', '.join(held)}: uninstalling "
                     "would end their intercept", advice=advise(Fix.HOLDER_LEAVES))


async def _claimants(gw: Gateway, workload: Manifest, client_id: str) -> list[str]:
    layout = agent_layout(workload)
    if layout is None:
        return []
    pods = [p for p in await gw.workload_pods(workload) if pod_ready(p) and pod_has_agent(p)]
    if not pods:
        return []
    name = min(p["metadata"]["name"] for p in pods)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEAD_CLAIM_WAIT
    while True:
        try:
            entries = await asyncio.wait_for(
                ask_agent(gw, workload["metadata"]["namespace"], name, layout.tunnel_port,
                          f"{client_id} (uninstall)"),
                ASK_TIMEOUT)
        except (InnerloopError, OSError, asyncio.TimeoutError) as exc:
            # An agent nobody can reach carries nobody's traffic either.
            log.info("cannot ask %s who holds a claim: %s", name, exc)
            return []
        others = sorted({e.client_id for e in entries if e.client_id != client_id})
        dead = [c for c in others if _gone_from_here(c)]
        if not dead or loop.time() >= deadline:
            return others
        log.info("waiting for %s to drop the claims of %s (gone from this machine)", name,
                 ", ".join(dead))
        await asyncio.sleep(PING_INTERVAL)


def _gone_from_here(name: str) -> bool:
    pid = pid_on_host(name, socket.gethostname())
    return pid is not None and not pid_alive(pid)
