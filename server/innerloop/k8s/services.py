"""What the cluster network reads: the Services a pod could name, and the pods behind one.

Reads as wide as the user may: every namespace's Services when they may list them cluster-wide,
else their namespace's plus `default/kubernetes` (what the kubelet's service links need).
"""

from __future__ import annotations

import asyncio
import contextlib

from innerloop.core.manifest import Manifest
from innerloop.k8s.api import Api, HttpError, api_path
from innerloop.k8s.errors import from_status

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


async def visible_services(api: Api, namespace: str) -> tuple[list[Manifest], list[str]]:
    """(Services, namespace names) the user may see; `namespace`'s Services always."""
    services, namespaces = await asyncio.gather(
        _all_or_none(api, api_path("v1", None, "services")),
        _all_or_none(api, api_path("v1", None, "namespaces")),
    )
    if services is None:
        services = await api.list_items("v1", "Service", "services", namespace)
        if namespace != "default":
            with contextlib.suppress(Exception):  # not ours to see: no KUBERNETES_* links
                master = await api.get_or_none(
                    api_path("v1", "default", "services", "kubernetes"), "get service kubernetes")
                services += [master] if master is not None else []
    names = [n["metadata"]["name"] for n in namespaces or ()]
    return services, names


async def _all_or_none(api: Api, path: str) -> list[Manifest] | None:
    """The items of a cluster-wide list, or None when the user may not list them."""
    try:
        data = await api.call_raw("GET", path)
    except HttpError as exc:
        if exc.status in (401, 403):
            return None
        raise from_status(exc.status, exc.body, f"list {path}") from None
    items: list[Manifest] = data.get("items", [])
    return items


async def endpoint_slices(api: Api, namespace: str, service: str) -> list[Manifest]:
    """The EndpointSlices of one Service."""
    return await api.list_items(
        "discovery.k8s.io/v1", "EndpointSlice", "endpointslices", namespace,
        f"{SERVICE_NAME_LABEL}={service}",
    )
