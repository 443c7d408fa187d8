"""The app container's environment as the kubelet built it: fetches what `core.env` resolves."""

from __future__ import annotations

import asyncio
import base64

from innerloop.core.env import ResolvedEnv, resolve, sources
from innerloop.core.errors import InnerloopError
from innerloop.core.manifest import Manifest
from innerloop.k8s.api import Api, api_path


async def environment(api: Api, pod: Manifest, container: str) -> ResolvedEnv:
    """The container's env in `pod` (Secrets included: never log it)."""
    namespace = pod["metadata"]["namespace"]
    needed = sources(pod, container)

    async def fetch(plural: str, name: str) -> tuple[str, dict[str, str] | None]:
        obj = await api.get_or_none(
            api_path("v1", namespace, plural, name),
            f"get {plural[:-1]} {name!r} in namespace {namespace!r} (for the env)",
        )
        if obj is None:
            return name, None
        if plural == "secrets":
            return name, {
                k: base64.b64decode(v).decode("utf-8", "surrogateescape")
                for k, v in obj.get("data", {}).items()
            }
        return name, dict(obj.get("data", {}))

    cms = await asyncio.gather(*(fetch("configmaps", n) for n in sorted(needed.config_maps)))
    secrets = await asyncio.gather(*(fetch("secrets", n) for n in sorted(needed.secrets)))
    allocatable = await node_allocatable(api, pod.get("spec", {}).get("nodeName"))
    return resolve(
        pod,
        container,
        {n: d for n, d in cms if d is not None},
        {n: d for n, d in secrets if d is not None},
        allocatable,
    )


async def node_allocatable(api: Api, node: str | None) -> dict[str, str]:
    """The kubelet's fallback for unset limits; empty when we may not read nodes."""
    if not node:
        return {}
    try:
        obj = await api.get_or_none(api_path("v1", None, "nodes", node), f"get node {node!r}")
    except InnerloopError:
        return {}
    return dict((obj or {}).get("status", {}).get("allocatable", {}))
