"""The one door to the API server: the blocking `kubernetes` client behind async methods.

Every call runs in a worker thread (`asyncio.to_thread`, see `k8s.api`). Decisions live in
`innerloop.core` (targets, patches, rollout, env); the modules here fetch (`reads`), check
permissions (`rbac`), wait (`rollout`), read the env (`environment`) and watch (`pods`), and this
facade gives the intercepts one object to hold, plus the writes: each a pure builder's result
put back with a retry on conflict.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from innerloop.core.agent_patch import (
    MANAGED_BY,
    agent_config_map,
    agent_config_map_name,
    unused_agent_config_maps,
)
from innerloop.core.manifest import Manifest
from innerloop.core.request import PortSpec
from innerloop.core.targets import ServiceSummary, WorkloadRef, label_selector
from innerloop.k8s import rbac, reads, rollout
from innerloop.k8s.api import Api, HttpError, api_path, workload_path
from innerloop.k8s.config import load_kubeconfig
from innerloop.k8s.errors import from_status
from innerloop.k8s.pods import ReadyPods

if TYPE_CHECKING:  # imported where used: an intercept's first API calls need none of them
    from innerloop.core.env import ResolvedEnv
    from innerloop.k8s.portforward import PortForward


class Gateway:
    """Async access to one cluster, as the kubeconfig's user."""

    def __init__(self, api: Api, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        """The kubeconfig context's namespace: the default for every call."""

    @classmethod
    async def connect(cls, kubeconfig: str | None = None, context: str | None = None) -> Gateway:
        """Load the kubeconfig (path or $KUBECONFIG or ~/.kube/config) and its context."""
        configuration, namespace = await asyncio.to_thread(load_kubeconfig, kubeconfig, context)
        return cls(Api(configuration), namespace)

    async def close(self) -> None:
        await self.api.close()

    # --- reading ---------------------------------------------------------------------------

    async def get_service(self, namespace: str, name: str) -> Manifest:
        return await reads.get_service(self.api, namespace, name)

    async def get_workload(self, ref: WorkloadRef) -> Manifest:
        return await reads.get_workload(self.api, ref)

    async def workload_pods(self, workload: Manifest) -> list[Manifest]:
        return await reads.workload_pods(self.api, workload)

    async def resolve(self, namespace: str, service: str, spec: PortSpec) -> reads.Resolution:
        return await reads.resolve(self.api, namespace, service, spec)

    async def list_services(self, namespace: str) -> list[ServiceSummary]:
        return await reads.list_services(self.api, namespace)

    async def visible_services(self, namespace: str) -> tuple[list[Manifest], list[str]]:
        """Every Service (and namespace name) the user may see, `namespace`'s at least."""
        from innerloop.k8s import services

        return await services.visible_services(self.api, namespace)

    async def endpoint_slices(self, namespace: str, service: str) -> list[Manifest]:
        from innerloop.k8s import services

        return await services.endpoint_slices(self.api, namespace, service)

    async def config_map_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        from innerloop.k8s import volumes

        return await volumes.object_data(self.api, namespace, "configmaps", name)

    async def secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        from innerloop.k8s import volumes

        return await volumes.object_data(self.api, namespace, "secrets", name)

    async def service_account_token(self, namespace: str, account: str, audience: str,
                                    expiration: int) -> str:
        from innerloop.k8s import volumes

        return await volumes.service_account_token(self.api, namespace, account, audience,
                                                   expiration)

    def api_server_address(self) -> tuple[str, int]:
        """Where the kubeconfig says the API server is (host, port)."""
        from innerloop.k8s import volumes

        return volumes.server_address(self.api)

    async def cluster_domain(self) -> str | None:
        """The cluster's DNS domain as the API server's certificate names it, if it does."""
        from innerloop.k8s import volumes

        return await volumes.cluster_domain(self.api)

    async def rules_review(self, namespace: str) -> dict[str, Any] | None:
        """What the user may do in the namespace, as the cluster lists it (None: it will not)."""
        return await rbac.rules_review(self.api, namespace)

    async def check_permissions(self, namespace: str, needs: Iterable[rbac.Permission],
                                rules: Awaitable[dict[str, Any] | None] | None = None) -> None:
        """Every missing permission at once; `rules`: a `rules_review` asked already."""
        await rbac.check_permissions(self.api, namespace, needs, rules)

    async def environment(self, pod: Manifest, container: str) -> ResolvedEnv:
        from innerloop.k8s import environment

        return await environment.environment(self.api, pod, container)

    # --- writing ---------------------------------------------------------------------------

    async def ensure_agent_config_map(self, namespace: str, agent: bytes) -> str:
        """The ConfigMap holding this agent build (content-addressed name); created if absent."""
        name = agent_config_map_name(agent)
        path = api_path("v1", namespace, "configmaps", name)
        if await self.api.get_or_none(path, f"get configmap {name!r}") is not None:
            return name
        try:
            await self.api.call_raw(
                "POST", api_path("v1", namespace, "configmaps"), (), agent_config_map(namespace, agent)
            )
        except HttpError as exc:
            if exc.status != 409:  # 409: someone else created it meanwhile, same content
                raise from_status(
                    exc.status, exc.body, f"create configmap {name!r} in namespace {namespace!r}"
                ) from None
        return name

    async def delete_unused_agent_config_maps(self, namespace: str) -> list[str]:
        """Delete the agent ConfigMaps no workload of the namespace mounts any more (uninstall
        leaves nothing innerloop created); the names deleted."""
        config_maps, workloads = await asyncio.gather(
            self.api.list_items(
                "v1", "ConfigMap", "configmaps", namespace, label_selector(MANAGED_BY)
            ),
            reads.list_workloads(self.api, namespace),
        )
        unused = unused_agent_config_maps(config_maps, workloads)
        for name in unused:
            await self.api.delete(
                api_path("v1", namespace, "configmaps", name),
                f"delete configmap {name!r} in namespace {namespace!r}",
            )
        return unused

    async def update_workload(
        self, ref: WorkloadRef, change: Callable[[Manifest], Manifest]
    ) -> Manifest:
        path = workload_path(ref.kind, ref.namespace, ref.name)
        return await self.api.update(path, str(ref), ref.namespace, change)

    async def update_service(
        self, namespace: str, name: str, change: Callable[[Manifest], Manifest]
    ) -> Manifest:
        path = api_path("v1", namespace, "services", name)
        return await self.api.update(path, f"service {name!r}", namespace, change)

    # --- waiting ---------------------------------------------------------------------------

    async def wait_rollout(
        self,
        ref: WorkloadRef,
        timeout: float = 180.0,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        await rollout.wait_rollout(self.api, ref, timeout, progress)

    async def wait_service_port(
        self,
        namespace: str,
        service: str,
        port_name: str | None,
        target: int,
        timeout: float = 15.0,
    ) -> bool:
        return await rollout.wait_service_port(
            self.api, namespace, service, port_name, target, timeout
        )

    # --- pods over time --------------------------------------------------------------------

    def watch_ready_pods(self, namespace: str, selector: str) -> ReadyPods:
        """Snapshots of the Ready pods a selector picks, each time that set changes."""
        return ReadyPods(self.api, namespace, selector)

    async def port_forward(self, namespace: str, pod: str, port: int) -> PortForward:
        """A Transport to the pod's 127.0.0.1:port through the API server."""
        from innerloop.k8s.portforward import PortForward

        return await PortForward.open(self.api.configuration, namespace, pod, port)
