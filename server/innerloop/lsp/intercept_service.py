"""The intercept manager (innerloop.intercepts) as the language server's `InterceptService`.

Translates between the manager's Python objects and the JSON the editor reads.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from innerloop.core.advice import Surface
from innerloop.core.env import sources
from innerloop.core.env_sources import env_sources
from innerloop.core.errors import InnerloopError, UserError
from innerloop.core.filters import Mode, filter_to_json
from innerloop.core.report import Report
from innerloop.core.request import InterceptRequest, PortSpec
from innerloop.core.rollout import pod_ready
from innerloop.core.targets import ServiceSummary
from innerloop.envfile import write_runtime_env_file
from innerloop.intercepts.intercept import Intercept
from innerloop.intercepts.manager import InterceptManager, ManagerConfig
from innerloop.intercepts.snapshot import Snapshot
from innerloop.lsp.deps import (
    ContextList,
    InterceptInfo,
    InterceptStateName,
    ServiceInfo,
    StatusInfo,
    TargetList,
)
from innerloop.lsp.settings import Settings

log = logging.getLogger(__name__)

_STATES: dict[str, InterceptStateName] = {
    "active": "active",
    "paused": "paused",
    "error": "error",
    "leaving": "stopping",
    "uninstalling": "stopping",
}


def manager_config(settings: Settings) -> ManagerConfig:
    """Empty settings mean "the kubeconfig's / the default"."""
    return ManagerConfig(
        kubeconfig=settings.kubeconfig or None,
        context=settings.context or None,
        namespace=settings.namespace or None,
        agent_image=settings.agentImage or None,
        agent_cpu=settings.agentCpu or None,
    )


def intercept_info(snapshot: Snapshot, request: InterceptRequest | None = None) -> InterceptInfo:
    """Every phase on the way to active (resolving, installing, …, reconnecting) is "connecting".
    `request` (the intercept's) gives the mode and the `match` object."""
    return {
        "id": snapshot.id,
        "namespace": snapshot.namespace,
        "service": snapshot.service,
        "servicePort": snapshot.service_port,
        "localPort": snapshot.local_port,
        "state": _STATES.get(snapshot.phase.value, "connecting"),
        "replicas": snapshot.replicas,
        "envFile": snapshot.env_file,
        "message": snapshot.message,
        "scope": snapshot.scope,
        "mode": "mirror" if request is not None and request.mode is Mode.MIRROR else "route",
        "match": {} if request is None else filter_to_json(request.filter),
    }


def service_info(namespace: str, summary: ServiceSummary) -> ServiceInfo:
    return {
        "namespace": namespace,
        "name": summary.name,
        "ports": [
            {"name": p.name, "port": p.port, "targetPort": p.target_port} for p in summary.ports
        ],
        "hasAgent": summary.agent,
    }


def namespace_choices(listed: list[str] | None, resolved: str) -> list[str]:
    """What the namespace pick offers: the resolved namespace always, the listed ones too."""
    return sorted({resolved, *(listed or [])})


def _status(manager: InterceptManager, snapshots: list[Snapshot]) -> StatusInfo:
    def request(snapshot: Snapshot) -> InterceptRequest | None:
        intercept = manager.intercepts.get(snapshot.id)
        return None if intercept is None else intercept.request

    return {"intercepts": [intercept_info(s, request(s)) for s in snapshots]}


class EditorIntercepts:
    def __init__(self, manager: InterceptManager) -> None:
        self.manager = manager
        self._env_sources: dict[tuple[str, str, str | None], dict[str, str]] = {}

    def configure(self, settings: Settings) -> None:
        self.manager.configure(manager_config(settings))

    async def status(self) -> StatusInfo:
        return _status(self.manager, self.manager.snapshots())

    async def list_targets(self, namespace: str | None) -> TargetList:
        """The namespaces the kubeconfig may list (else just the resolved one: the context's,
        as kubectl would use), and the Services of the resolved namespace."""
        resolved, services = await self.manager.list_services(namespace)
        listed = await self._namespaces()
        return {
            "namespaces": namespace_choices(listed, resolved),
            "namespace": resolved,
            "services": [service_info(resolved, s) for s in services],
        }

    async def list_contexts(self) -> ContextList:
        contexts, current = await self.manager.contexts()
        return {
            "contexts": [{"name": c.name, "namespace": c.namespace, "cluster": c.cluster}
                         for c in contexts],
            "current": current,
            "selected": self.manager.config.context,
        }

    async def _namespaces(self) -> list[str] | None:
        try:
            return await self.manager.list_namespaces()
        except InnerloopError as err:
            log.info("cannot list namespaces: %s", err.user_line(Surface.EDITOR))
            return None

    async def start(self, request: InterceptRequest, progress: Report) -> InterceptInfo:
        intercept = await self.manager.start(request, report=progress)
        if intercept.env_file is None:
            write = asyncio.ensure_future(self._write_env(intercept, progress))
            try:
                await asyncio.shield(write)
            except asyncio.CancelledError:
                # The intercept is active: too late to cancel the start; answer it as started.
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
                await write
        return intercept_info(intercept.snapshot(), intercept.request)

    async def _write_env(self, intercept: Intercept, progress: Report) -> None:
        """The user's own program needs the workload's env; without it the intercept still
        works (e.g. no permission to read its Secrets), so that is only a warning."""
        try:
            env = await self.manager.environment(intercept)
        except InnerloopError as err:
            log.warning("%s: no env file: %s", intercept.id, err.user_line())
            return
        path = await asyncio.to_thread(write_runtime_env_file, intercept.target, env.values)
        intercept.env_file = str(path)
        intercept.on_change(intercept)
        progress(f"wrote {len(env.values)} variables of the workload's env to {path} (0600)")

    async def stop(self, intercept_id: str) -> None:
        intercept = self.manager.intercepts.get(intercept_id)
        if intercept is None:
            raise UserError(f"there is no intercept {intercept_id!r} held by this language server")
        try:
            await self.manager.leave(intercept)
        finally:
            await _remove(intercept.env_file)

    async def uninstall(self, namespace: str | None, service: str, progress: Report) -> None:
        await self.manager.uninstall(service, namespace, progress)

    async def env_sources(
        self, namespace: str | None, service: str, service_port: str | None, refresh: bool = False
    ) -> dict[str, str]:
        """The Service's app container env, described per variable from a Ready replica's spec
        and its ConfigMaps; of its Secrets only the key names are kept."""
        ns = await self.manager.namespace(namespace)
        key = (ns, service, service_port)
        if refresh or key not in self._env_sources:
            self._env_sources[key] = await self._read_env_sources(ns, service, service_port)
        return self._env_sources[key]

    async def _read_env_sources(self, ns: str, service: str, service_port: str | None
                                ) -> dict[str, str]:
        gw = await self.manager.gateway()
        port = int(service_port) if service_port and service_port.isdigit() else service_port
        resolution = await gw.resolve(ns, service, PortSpec(port or None, None))
        pods = await gw.workload_pods(resolution.workload)
        pod = next((p for p in pods if pod_ready(p)), pods[0] if pods else None)
        if pod is None:
            raise UserError(f"{resolution.target.workload} has no pods to read the env from")
        container = resolution.target.container
        needed = sources(pod, container)
        config_maps: dict[str, dict[str, str]] = {}
        for name in sorted(needed.config_maps):
            data = await gw.config_map_data(ns, name)
            if data is not None:
                config_maps[name] = {k: v.decode("utf-8", "replace") for k, v in data.items()}
        secret_keys: dict[str, list[str]] = {}
        for name in sorted(needed.secrets):
            secret = await gw.secret_data(ns, name)
            secret_keys[name] = sorted(secret or {})  # the key names only, values dropped here
        return env_sources(pod, container, config_maps, secret_keys)

    def subscribe(self, callback: Callable[[StatusInfo], None]) -> Callable[[], None]:
        return self.manager.subscribe(lambda snapshots: callback(_status(self.manager, snapshots)))

    async def aclose(self) -> None:
        env_files = [i.env_file for i in self.manager.intercepts.values()]
        try:
            await self.manager.close()
        finally:
            for path in env_files:
                await _remove(path)


async def _remove(path: str | None) -> None:
    """Removes an env file this server wrote (it holds Secrets)."""
    if path is not None:
        await asyncio.to_thread(_unlink, path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
