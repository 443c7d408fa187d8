"""What the editor's Innerloop view reads: the request log of what was routed here, the active
intercepts with their tunnels, each Service's replicas. The TypedDicts are the JSON the
extension parses (extension/src/viewModel.ts); keys are camelCase.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, TypedDict

from innerloop.core.errors import InnerloopError
from innerloop.core.request_log import FlowRecord, RequestLog
from innerloop.intercepts import cluster_view
from innerloop.intercepts.manager import InterceptManager

log = logging.getLogger(__name__)


class TunnelInfo(TypedDict):
    pod: str
    connected: bool
    rttMs: float | None


class InterceptNode(TypedDict):
    id: str
    namespace: str
    service: str
    servicePort: int | str | None
    localPort: int | None
    state: str
    holder: str
    """Who holds it, as another user would see it in a refusal (`user@host:pid`)."""
    since: float
    """Epoch seconds."""
    scope: str
    tunnels: list[TunnelInfo]


class ServiceNode(TypedDict):
    name: str
    ports: list[str]
    """`80→8080/http` per Service port."""
    hasAgent: bool
    workload: str | None
    """`deployment/NAME`; None without a single workload behind the Service."""
    ready: int | None
    wanted: int | None


class NamespaceList(TypedDict):
    namespaces: list[str]
    current: str
    """The namespace the settings or the context name."""


class FlowSource(Protocol):
    """The intercept manager's request log and what the view shows of its intercepts."""

    log: RequestLog

    def intercepts(self) -> list[InterceptNode]: ...

    async def namespaces(self) -> NamespaceList: ...

    async def services(self, namespace: str) -> list[ServiceNode]: ...

    def record_json(self, record: FlowRecord) -> dict[str, Any]:
        """The record as the view gets it, with the caller's pod name when known."""
        ...

    async def name_callers(self, records: list[FlowRecord]) -> bool:
        """Look the callers' pods up; True when a name became known (push the records again)."""
        ...


class EditorFlows:
    def __init__(self, manager: InterceptManager) -> None:
        self.manager = manager
        self.log = RequestLog()
        manager.request_log = self.log
        self._pods = cluster_view.PodNames(manager)

    def intercepts(self) -> list[InterceptNode]:
        nodes: list[InterceptNode] = []
        for intercept in self.manager.intercepts.values():
            snap = intercept.snapshot()
            nodes.append({
                "id": snap.id,
                "namespace": snap.namespace,
                "service": snap.service,
                "servicePort": snap.service_port,
                "localPort": snap.local_port,
                "state": snap.phase.value,
                "holder": self.manager.client_id,
                "since": snap.started,
                "scope": snap.scope,
                "tunnels": [{"pod": t.pod, "connected": t.connected,
                             "rttMs": None if t.rtt is None else round(t.rtt * 1000, 2)}
                            for t in cluster_view.tunnels(intercept)],
            })
        return nodes

    async def namespaces(self) -> NamespaceList:
        current = await self.manager.namespace(None)
        try:
            listed = await self.manager.list_namespaces() or []
        except InnerloopError as err:
            log.info("cannot list namespaces: %s", err)
            listed = []
        return {"namespaces": sorted({current, *listed}), "current": current}

    async def services(self, namespace: str) -> list[ServiceNode]:
        ns, summaries = await self.manager.list_services(namespace)
        replicas = await cluster_view.workload_replicas(self.manager, ns)
        nodes: list[ServiceNode] = []
        for s in summaries:
            count = replicas.get(s.workload) if s.workload is not None else None
            nodes.append({
                "name": s.name,
                "ports": [f"{p.port}→{p.target_port}" + (f"/{p.name}" if p.name else "")
                          for p in s.ports],
                "hasAgent": s.agent,
                "workload": None if s.workload is None else str(s.workload),
                "ready": None if count is None else count.ready,
                "wanted": None if count is None else count.wanted,
            })
        return nodes

    def record_json(self, record: FlowRecord) -> dict[str, Any]:
        return {**record.as_json(), "peerPod": self._pods.known(_ip(record.peer))}

    async def name_callers(self, records: list[FlowRecord]) -> bool:
        wanted: dict[str, set[str]] = {}
        for record in records:
            ip = _ip(record.peer)
            if self._pods.known(ip) is None:
                wanted.setdefault(record.intercept.split("/")[0], set()).add(ip)
        named = False
        for namespace, ips in wanted.items():
            try:
                named = await self._pods.look_up(namespace, ips) or named
            except InnerloopError as err:
                log.info("cannot name the callers' pods in %s: %s", namespace, err)
        return named


def param(params: Any, name: str) -> Any:
    """A custom request's parameter: pygls hands them over as a dict or an attribute object."""
    if isinstance(params, dict):
        return params.get(name)
    return getattr(params, name, None)


def _ip(peer: str) -> str:
    """`198.18.1.7:40000` → `198.18.1.7` (and `[::1]:5` → `::1`)."""
    host = peer.rsplit(":", 1)[0] if ":" in peer else peer
    return host.strip("[]")
