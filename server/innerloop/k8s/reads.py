"""Reading what an intercept is about: Services, workloads, pods, and the target they resolve to.

The decisions are `core.targets`'; this module only fetches, as little as it can, so a user
allowed to read just their own kind of workload can intercept it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from innerloop.core.errors import InnerloopError
from innerloop.core.manifest import Manifest
from innerloop.core.request import PortSpec
from innerloop.core.targets import (
    ServiceSummary,
    Target,
    WorkloadRef,
    label_selector,
    resolve_target,
    service_selector,
    summarize_services,
    workload_selector,
)
from innerloop.k8s.api import WORKLOADS, Api, HttpError, api_path, workload_path


@dataclass(frozen=True)
class Resolution:
    """A resolved target with the objects it was resolved from (as read)."""

    target: Target
    service: Manifest
    workload: Manifest
    pods: tuple[Manifest, ...] = ()
    """The pods the Service selected when it was read (all of them the workload's: a Service
    over several workloads is refused)."""


async def get_service(api: Api, namespace: str, name: str) -> Manifest:
    return await api.get(api_path("v1", namespace, "services", name), f"service {name!r}", namespace)


async def get_workload(api: Api, ref: WorkloadRef) -> Manifest:
    return await api.get(workload_path(ref.kind, ref.namespace, ref.name), str(ref), ref.namespace)


async def list_workloads(api: Api, namespace: str) -> list[Manifest]:
    """Every Deployment, StatefulSet and ReplicaSet of the namespace."""
    lists = await asyncio.gather(
        *(api.list_items("apps/v1", kind, plural, namespace) for kind, plural in WORKLOADS.items())
    )
    return [w for items in lists for w in items]


async def list_pods(api: Api, namespace: str, selector: str) -> list[Manifest]:
    return await api.list_items("v1", "Pod", "pods", namespace, selector)


async def workload_pods(api: Api, workload: Manifest) -> list[Manifest]:
    return await list_pods(api, workload["metadata"]["namespace"], workload_selector(workload))


async def resolve(api: Api, namespace: str, service: str, spec: PortSpec) -> Resolution:
    """Service → port → workload → container (core.targets), from fresh reads.

    Reads only the owners of the selected pods (ReplicaSet → Deployment, StatefulSet).
    """
    svc = await get_service(api, namespace, service)
    pods = await list_pods(api, namespace, label_selector(service_selector(svc)))
    workloads = await (owners(api, namespace, pods) if pods else list_workloads(api, namespace))
    target = resolve_target(svc, spec, pods, workloads)
    [workload] = [
        w
        for w in workloads
        if w["kind"] == target.workload.kind and w["metadata"]["name"] == target.workload.name
    ]
    return Resolution(target=target, service=svc, workload=workload, pods=tuple(pods))


def _deployment_guess(pod: Manifest) -> tuple[str, str] | None:
    """The Deployment a pod's ReplicaSet most likely belongs to: a Deployment names its
    ReplicaSets `<deployment>-<pod-template-hash>`. Only a guess until the ReplicaSet says so."""
    meta = pod["metadata"]
    template_hash = (meta.get("labels") or {}).get("pod-template-hash")
    for ref in meta.get("ownerReferences", []):
        name = str(ref.get("name", ""))
        if ref.get("controller") and ref.get("kind") == "ReplicaSet" and template_hash and \
                name.endswith(f"-{template_hash}") and len(name) > len(template_hash) + 1:
            return "Deployment", name[:-len(template_hash) - 1]
    return None


async def _read_quietly(api: Api, path: str) -> Manifest | None:
    """A read whose failure is nobody's business yet (a guess): None."""
    try:
        return await api.get_or_none(path, "")
    except InnerloopError:
        return None


async def owners(api: Api, namespace: str, pods: Sequence[Manifest]) -> list[Manifest]:
    """The controllers of the pods, and a ReplicaSet's Deployment. The Deployment its name
    suggests is read with the ReplicaSets, and used once a ReplicaSet names it as its own: one
    round trip less."""
    found: dict[tuple[str, str], Manifest] = {}
    todo = {
        (ref["kind"], ref["name"])
        for p in pods
        for ref in p["metadata"].get("ownerReferences", [])
        if ref.get("controller")
    }
    guesses = sorted({g for p in pods if (g := _deployment_guess(p)) is not None} - todo)
    early: dict[tuple[str, str], Manifest | None] = {}
    while todo:  # one level at a time, each level's reads at once (old and new ReplicaSets)
        level = sorted(k for k in todo if k[0] in WORKLOADS and k not in found)
        ask = [k for k in level if early.get(k) is None]
        read = await asyncio.gather(
            *(api.get_or_none(workload_path(kind, namespace, name),
                              f"get {kind.lower()}/{name} in namespace {namespace!r}")
              for kind, name in ask),
            *(_read_quietly(api, workload_path(kind, namespace, name)) for kind, name in guesses))
        got = {**{k: early[k] for k in level if k not in ask}, **dict(zip(ask, read))}
        early.update(zip(guesses, read[len(ask):]))
        guesses = []
        todo = set()
        for kind, name in level:
            obj = got[(kind, name)]
            if obj is None:
                continue
            obj.setdefault("kind", kind)
            found[(kind, name)] = obj
            todo |= {
                (ref["kind"], ref["name"])
                for ref in obj["metadata"].get("ownerReferences", [])
                if ref.get("controller")
            }
    return list(found.values())


async def list_namespaces(api: Api) -> list[str] | None:
    """The namespaces this user may list (sorted), or None when the cluster forbids listing
    them (namespaces are cluster-scoped: many users may only see their own)."""
    try:
        found = await api.call_raw("GET", api_path("v1", None, "namespaces"))
    except HttpError as exc:
        if exc.status in (401, 403):
            return None
        raise
    return sorted(item["metadata"]["name"] for item in found.get("items", []))


async def list_services(api: Api, namespace: str) -> list[ServiceSummary]:
    """Services with their ports and the agent / takeover state (for `innerloop list`)."""
    services, workloads = await asyncio.gather(
        api.list_items("v1", "Service", "services", namespace), list_workloads(api, namespace)
    )
    return summarize_services(services, workloads)
