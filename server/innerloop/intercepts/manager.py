"""The intercept manager shared by the CLI, the language server and the debug adapter.

It owns the cluster connection (one Gateway, made on first use from the current settings), the
intercepts this process holds, and the listeners that want to hear about every state change.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from innerloop.agent.zipapp import agent_bundle
from innerloop.core.client_id import make_client_id
from innerloop.core.errors import ClusterError, UserError
from innerloop.core.manifest import Manifest
from innerloop.core.report import Report
from innerloop.core.request import InterceptRequest
from innerloop.core.rollout import pod_ready
from innerloop.core.targets import ServiceSummary, WorkloadRef, containers
from innerloop.intercepts import registry
from innerloop.intercepts.intercept import Intercept
from innerloop.intercepts.snapshot import Snapshot
from innerloop.k8s import reads
from innerloop.k8s.config import KubeContext, kube_contexts
from innerloop.k8s.gateway import Gateway

if TYPE_CHECKING:  # imported where used: a CLI intercept loads neither (nor h11)
    from innerloop.clusternet.network import ClusterNetwork
    from innerloop.core.env import ResolvedEnv
    from innerloop.core.request_log import RequestLog
    from innerloop.tunnel.client import TunnelClient

log = logging.getLogger(__name__)

WORKLOAD_KINDS = {"deploy": "Deployment", "deployment": "Deployment",
                  "sts": "StatefulSet", "statefulset": "StatefulSet"}


@dataclass(frozen=True)
class ManagerConfig:
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    agent_image: str | None = None
    """None: keep the installed agent's image, or DEFAULT_AGENT_IMAGE for a first injection."""
    agent_cpu: str | None = None
    """The sidecar's CPU request (`10m`, `0.25`); None: keep the installed agent's, or
    DEFAULT_AGENT_CPU for a first injection. A different one rolls the workload out."""


@dataclass(frozen=True)
class LikeWorkload:
    """`innerloop run --like deploy/NAME`: what the command gets of that workload."""

    env: ResolvedEnv
    service_links: bool
    pod: Manifest
    """A Ready replica: its container's env and volumes are the command's."""
    container: str


def default_client_id() -> str:
    """Who holds an intercept, as other users see it in a refusal."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return make_client_id(user, socket.gethostname(), os.getpid())


class InterceptManager:
    def __init__(self, config: ManagerConfig | None = None, client_id: str | None = None,
                 tool: str = "cli") -> None:
        self.config = config or ManagerConfig()
        self.client_id = client_id or default_client_id()
        self.tool = tool
        """Named in this machine's record of held intercepts (`innerloop status`)."""
        self.intercepts: dict[str, Intercept] = {}
        self._gateway: Gateway | None = None
        self._listeners: list[Callable[[list[Snapshot]], None]] = []
        self._bundle: bytes | None = None
        self.request_log: RequestLog | None = None
        """What was routed here, for the editor's view; None (the CLI): streams are not read."""

    # -- configuration and connection -------------------------------------------------------

    def configure(self, config: ManagerConfig) -> None:
        """New settings apply to operations started afterwards (a new cluster connection)."""
        if config != self.config:
            self.config = config
            old, self._gateway = self._gateway, None
            if old is not None and not self.intercepts:
                asyncio.ensure_future(old.close())

    async def gateway(self) -> Gateway:
        if self._gateway is None:
            self._gateway = await Gateway.connect(self.config.kubeconfig, self.config.context)
        return self._gateway

    async def namespace(self, namespace: str | None) -> str:
        if namespace:
            return namespace
        if self.config.namespace:
            return self.config.namespace
        return (await self.gateway()).namespace

    def _agent(self) -> bytes:
        if self._bundle is None:
            self._bundle = agent_bundle()[1]
        return self._bundle

    # -- listeners --------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[list[Snapshot]], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def snapshots(self) -> list[Snapshot]:
        return [i.snapshot() for i in self.intercepts.values()]

    def _changed(self, _intercept: Intercept | None = None) -> None:
        snaps = self.snapshots()
        for callback in list(self._listeners):
            try:
                callback(snaps)
            except Exception:
                log.exception("status listener failed")

    async def _intercept(self, request: InterceptRequest, report: Report | None) -> Intercept:
        key = request.key
        intercept = Intercept(
            await self.gateway(),
            request,
            request.agent_image or self.config.agent_image,
            self._agent(),
            self.client_id,
            self._changed,
            report or (lambda line: log.info("%s: %s", key, line)),
            agent_cpu=self.config.agent_cpu,
        )
        if self.request_log is not None:
            from innerloop.intercepts.http_tap import tap_factory

            intercept.tap = tap_factory(self.request_log, key, time.time,
                                        asyncio.get_running_loop().call_soon)
        return intercept

    # -- operations -------------------------------------------------------------------------

    async def contexts(self) -> tuple[list[KubeContext], str | None]:
        """The kubeconfig's contexts (no cluster is reached: any may be unreachable)."""
        return await asyncio.to_thread(kube_contexts, self.config.kubeconfig)

    async def list_namespaces(self) -> list[str] | None:
        """The namespaces the kubeconfig's user may list; None when it may not."""
        return await reads.list_namespaces((await self.gateway()).api)

    async def list_services(self, namespace: str | None) -> tuple[str, list[ServiceSummary]]:
        ns = await self.namespace(namespace)
        gw = await self.gateway()
        services = await gw.list_services(ns)
        if not services and await gw.api.namespace_exists(ns) is False:
            raise await gw.api.missing("namespace", ns)  # as `intercept` says it
        return ns, services

    async def start(self, request: InterceptRequest, report: Report | None = None,
                    check_local_port: Callable[[int], None] | None = None) -> Intercept:
        """Intercept until `leave`; cancelling unwinds everything this start did.
        `check_local_port` may refuse the local port before the cluster is changed."""
        request = replace(request, namespace=await self.namespace(request.namespace))
        service, ns = request.service, request.namespace
        key = request.key
        existing = self.intercepts.get(key)
        if existing is not None:
            if existing.request == request:
                return existing
            raise UserError(
                f"{service}.{ns} is already intercepted by this process; leave it first"
            )
        intercept = await self._intercept(request, report)
        if check_local_port is not None:
            intercept.check_local_port = check_local_port
        self.intercepts[key] = intercept
        try:
            await intercept.start()
        except BaseException:
            self.intercepts.pop(key, None)
            self._changed()
            raise
        t = intercept.target
        registry.record(registry.Entry(
            t.namespace, t.service, t.service_port.label(), t.local_port, os.getpid(),
            self.client_id, time.time(), self.tool, intercept.request.scope()))
        return intercept

    def get(self, service: str, namespace: str) -> Intercept:
        intercept = self.intercepts.get(f"{namespace}/{service}")
        if intercept is None:
            raise UserError(f"{service}.{namespace} is not intercepted by this process")
        return intercept

    async def leave(self, intercept: Intercept) -> None:
        try:
            await intercept.leave()
        finally:
            self.intercepts.pop(intercept.id, None)
            registry.forget(intercept.namespace, intercept.request.service)
            self._changed()

    async def leave_all(self) -> None:
        await asyncio.gather(*(self.leave(i) for i in list(self.intercepts.values())))

    async def _replica(self, workload: Manifest, ref: WorkloadRef) -> Manifest:
        """A Ready replica (else any), whose container's env and volumes the program gets."""
        pods = await (await self.gateway()).workload_pods(workload)
        ready = [p for p in pods if pod_ready(p)] or pods
        if not ready:
            raise ClusterError(f"{ref} has no pods to read the environment from")
        return ready[0]

    async def environment(self, intercept: Intercept) -> ResolvedEnv:
        """The app container's env as the kubelet built it in one Ready replica."""
        gw = await self.gateway()
        target = intercept.target
        pod = await self._replica(await gw.get_workload(target.workload), target.workload)
        return await gw.environment(pod, target.container)

    async def workload_environment(self, like: str, namespace: str, container: str | None = None
                                   ) -> LikeWorkload:
        """`--like deploy/NAME`: its container's env as the kubelet built it in a Ready
        replica (whose volumes the command gets too), and whether its pods get service-link
        variables."""
        gw = await self.gateway()
        ref = workload_ref(like, namespace)
        workload = await gw.get_workload(ref)
        spec = workload.get("spec", {}).get("template", {}).get("spec", {})
        names = [c["name"] for c in containers(spec)]
        if container is not None and container not in names:
            raise UserError(f"{ref} has no container {container!r}; its containers: "
                            f"{', '.join(names)}")
        pod = await self._replica(workload, ref)
        chosen = container or names[0]
        return LikeWorkload(await gw.environment(pod, chosen),
                            spec.get("enableServiceLinks", True) is not False, pod, chosen)

    async def cluster_network(self, intercept: Intercept, report: Report | None = None
                              ) -> ClusterNetwork:
        """The cluster network of a process launched with this intercept: its connections
        leave from the workload's pods, through the intercept's tunnels; the workload
        container's volumes copied (started; `aclose` it)."""
        from innerloop.clusternet.network import ClusterNetwork
        from innerloop.clusternet.volumes import VolumeMirror

        resolution = intercept.resolution
        assert resolution is not None, "the intercept is not started"

        def clients() -> list[TunnelClient]:
            tunnels = intercept.tunnels
            workers = tunnels.workers.values() if tunnels is not None else ()
            return [w.client for w in workers if w.client is not None]

        gw = await self.gateway()
        target = resolution.target
        pod = await self._replica(resolution.workload, target.workload)
        spec = resolution.workload.get("spec", {}).get("template", {}).get("spec", {})
        network = ClusterNetwork.through_agents(
            gw, intercept.namespace, clients, str(target.workload),
            service_links=spec.get("enableServiceLinks", True) is not False,
            domain=await gw.cluster_domain(),
            volumes=VolumeMirror(gw, pod, target.container, report))
        await network.start()
        return network

    async def port_forward_network(self, namespace: str | None, like: LikeWorkload | None = None,
                                   report: Report | None = None) -> ClusterNetwork:
        """A cluster network without an agent: port-forwards to the Services' pods, the API
        server's own Service straight to it; with `like`, that replica's volumes (started)."""
        from innerloop.clusternet.network import ClusterNetwork
        from innerloop.clusternet.volumes import VolumeMirror

        gw = await self.gateway()
        network = ClusterNetwork.through_port_forwards(
            gw, await self.namespace(namespace), like is None or like.service_links,
            domain=await gw.cluster_domain(),
            volumes=VolumeMirror(gw, like.pod, like.container, report) if like else None,
            api_server=gw.api_server_address())
        await network.start()
        return network

    async def uninstall(self, service: str, namespace: str | None, report: Report | None = None,
                        force: bool = False) -> bool:
        """Restore the Service and remove the sidecar: specs equal what they were before.
        False when innerloop had changed neither (nothing done). Refuses while another client
        holds an intercept of the Service, unless `force`."""
        ns = await self.namespace(namespace)
        held = self.intercepts.get(f"{ns}/{service}")
        if held is not None:
            await self.leave(held)
        intercept = await self._intercept(InterceptRequest(service, ns), report)
        return await intercept.uninstall(force)

    async def uninstall_all(self, namespace: str | None, report: Report | None = None,
                            force: bool = False, only: list[str] | None = None) -> list[str]:
        """Uninstall from the Services `only` names, by default from every Service of the
        namespace that innerloop touched; the ones where there was something to undo."""
        ns = await self.namespace(namespace)
        if only is None:
            _, services = await self.list_services(ns)
            only = [s.name for s in services if s.agent or s.taken_over]
        return [name for name in only if await self.uninstall(name, ns, report, force)]

    async def close(self) -> None:
        await self.leave_all()
        if self._gateway is not None:
            await self._gateway.close()
            self._gateway = None


def workload_ref(text: str, namespace: str) -> WorkloadRef:
    """`deploy/NAME` (or deployment/, sts/, statefulset/) → the workload."""
    kind, _, name = text.partition("/")
    if kind.lower() not in WORKLOAD_KINDS or not name:
        raise UserError(f"--like wants deploy/NAME or sts/NAME, not {text!r}")
    return WorkloadRef(WORKLOAD_KINDS[kind.lower()], name, namespace)


def with_overrides(config: ManagerConfig, **changes: str | None) -> ManagerConfig:
    """The config with every non-empty override applied (CLI flags over settings)."""
    return replace(config, **{k: v for k, v in changes.items() if v})
