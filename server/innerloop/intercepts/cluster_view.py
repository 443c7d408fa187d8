"""What the editor's Innerloop view shows beyond the intercepts' status: each Service's replicas,
each intercept's tunnels one per replica, and which pod a caller's address belongs to.

Reads only (no change to the cluster), through the manager's gateway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from innerloop.core.manifest import Manifest
from innerloop.core.targets import WorkloadRef
from innerloop.intercepts.intercept import Intercept
from innerloop.intercepts.manager import InterceptManager
from innerloop.k8s import reads

POD_NAMES_TTL = 5.0
"""A namespace's pod addresses are listed again at most this often (callers come and go)."""


@dataclass(frozen=True)
class Replicas:
    ready: int
    wanted: int


@dataclass(frozen=True)
class TunnelHealth:
    pod: str
    connected: bool
    rtt: float | None
    """Seconds of the last keepalive round trip; None before the first."""


async def workload_replicas(manager: InterceptManager, namespace: str
                            ) -> dict[WorkloadRef, Replicas]:
    """Ready and wanted replicas of each Deployment and StatefulSet of the namespace."""
    api = (await manager.gateway()).api
    return {ref: replicas for w in await reads.list_workloads(api, namespace)
            if (ref := _ref(w, namespace)) is not None and (replicas := _replicas(w))}


def tunnels(intercept: Intercept) -> list[TunnelHealth]:
    """One per replica the intercept follows, connected or (re)connecting."""
    if intercept.tunnels is None:
        return []
    return [TunnelHealth(pod, w.client is not None, w.client.rtt if w.client else None)
            for pod, w in sorted(intercept.tunnels.workers.items())]


class PodNames:
    """Caller address → pod name, from the pods of the namespaces asked about."""

    def __init__(self, manager: InterceptManager) -> None:
        self._manager = manager
        self._names: dict[str, str] = {}
        self._listed: dict[str, float] = {}

    def known(self, ip: str) -> str | None:
        return self._names.get(ip)

    async def look_up(self, namespace: str, ips: set[str]) -> bool:
        """List the namespace's pods unless every address is known or it was listed lately;
        True when an address got its pod's name."""
        missing = ips - self._names.keys()
        now = time.monotonic()
        if not missing or now - self._listed.get(namespace, -POD_NAMES_TTL) < POD_NAMES_TTL:
            return False
        self._listed[namespace] = now
        api = (await self._manager.gateway()).api
        for pod in await reads.list_pods(api, namespace, ""):
            ip = pod.get("status", {}).get("podIP")
            if ip:
                self._names[ip] = pod["metadata"]["name"]
        return bool(missing & self._names.keys())


def _ref(workload: Manifest, namespace: str) -> WorkloadRef | None:
    kind = workload.get("kind")
    if kind not in ("Deployment", "StatefulSet"):
        return None
    return WorkloadRef(kind, workload["metadata"]["name"], namespace)


def _replicas(workload: Manifest) -> Replicas | None:
    status = workload.get("status") or {}
    wanted = (workload.get("spec") or {}).get("replicas", 1)
    return Replicas(int(status.get("readyReplicas") or 0), int(wanted))
