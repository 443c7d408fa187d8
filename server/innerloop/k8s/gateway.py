"""The one door to the API server: the blocking `kubernetes` client behind async methods.

Every call runs in a worker thread (`asyncio.to_thread`). Objects travel as raw API JSON
(camelCase dicts), read and written as the server sends them: the client's typed models would
drop fields newer than the client, and a replace built from them would silently delete those
fields. Decisions live in `innerloop.core` (targets, patches, env); this module fetches, writes,
waits and watches, and turns every failure into one actionable line:

- kubeconfig problems → ConfigError; unreachable server → ClusterError with its URL;
- 404 → UserError naming what is missing (namespace vs service);
- 403 → ClusterError naming who may not do what where (RBAC).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException

from innerloop.core.agent_patch import agent_config_map, agent_config_map_name
from innerloop.core.env import ResolvedEnv, resolve, sources
from innerloop.core.errors import ClusterError, ConfigError, InnerloopError, UserError
from innerloop.core.manifest import Manifest
from innerloop.core.request import PortSpec
from innerloop.core.rollout import pod_ready, rollout_problem, rollout_status
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
from innerloop.k8s.errors import from_status, unreachable
from innerloop.k8s.portforward import PortForward

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = (5.0, 30.0)
"""(connect, read) seconds for ordinary calls: an unreachable server fails fast."""
WATCH_SECONDS = 60
POLL_SECONDS = 0.5
UPDATE_ATTEMPTS = 5

_WORKLOADS = {
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "ReplicaSet": "replicasets",
}

Permission = tuple[str, str, str]
"""(verb, resource[/subresource], API group), as a SelfSubjectAccessReview asks it."""

ENV_PERMISSIONS: tuple[Permission, ...] = (("get", "configmaps", ""), ("get", "secrets", ""))
"""What reading the workload's environment (`-- CMD`, `--env-file`) needs."""


def intercept_permissions(workload: WorkloadRef, manual_rollout: bool) -> tuple[Permission, ...]:
    """What an intercept of this workload needs, checked before anything is changed.

    `manual_rollout`: no controller replaces the pods (ReplicaSet, StatefulSet OnDelete), so
    the gateway deletes them one by one.
    """
    plural = _WORKLOADS[workload.kind]
    return (
        ("get", "services", ""),
        ("update", "services", ""),
        ("list", "pods", ""),
        ("watch", "pods", ""),
        # The WebSocket port-forward is authorized as `get`; newer clusters also want `create`.
        ("get", "pods/portforward", ""),
        ("create", "pods/portforward", ""),
        ("get", "configmaps", ""),
        ("create", "configmaps", ""),
        ("get", plural, "apps"),
        ("update", plural, "apps"),
        *((("delete", "pods", ""),) if manual_rollout else ()),
    )


class _HttpError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _path(group_version: str, namespace: str | None, plural: str, name: str | None = None) -> str:
    prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    path = prefix + (f"/namespaces/{quote(namespace)}" if namespace else "") + f"/{plural}"
    return path + (f"/{quote(name)}" if name else "")


def _workload_path(kind: str, namespace: str, name: str) -> str:
    return _path("apps/v1", namespace, _WORKLOADS[kind], name)


@dataclass(frozen=True)
class Resolution:
    """A resolved target with the objects it was resolved from (as read)."""

    target: Target
    service: Manifest
    workload: Manifest


class Gateway:
    """Async access to one cluster, as the kubeconfig's user."""

    def __init__(self, api: ApiClient, namespace: str) -> None:
        self._api = api
        self.configuration: Configuration = api.configuration
        self.namespace = namespace
        """The kubeconfig context's namespace: the default for every call."""

    # --- connecting ------------------------------------------------------------------------

    @classmethod
    async def connect(cls, kubeconfig: str | None = None, context: str | None = None) -> Gateway:
        """Load the kubeconfig (path or $KUBECONFIG or ~/.kube/config) and its context."""
        return await asyncio.to_thread(cls._load, kubeconfig, context)

    @classmethod
    def _load(cls, kubeconfig: str | None, context: str | None) -> Gateway:
        path = (
            kubeconfig or os.environ.get("KUBECONFIG") or kube_config.KUBE_CONFIG_DEFAULT_LOCATION
        )
        shown = path if kubeconfig or os.environ.get("KUBECONFIG") else "~/.kube/config"
        first = os.path.expanduser(path.split(os.pathsep)[0])
        if not os.path.exists(first):
            raise ConfigError(f"no kubeconfig at {shown}; pass --kubeconfig or set KUBECONFIG")
        try:
            contexts, active = kube_config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                config_file=path
            )
        except Exception as exc:  # any unreadable kubeconfig (YAML, shape) is a config error
            raise ConfigError(f"cannot read kubeconfig {shown}: {_one_line(exc)}") from exc
        names = [c["name"] for c in contexts or []]
        if context is not None and context not in names:
            raise ConfigError(
                f"kubeconfig {shown} has no context {context!r}; its contexts "
                f"are {', '.join(names) or 'none'}"
            )
        chosen = next((c for c in contexts if c["name"] == context), active) if context else active
        if not chosen:
            raise ConfigError(f"kubeconfig {shown} has no current context; pass --context")
        cfg = Configuration()
        try:
            kube_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path, context=context, client_configuration=cfg, persist_config=False
            )
        except Exception as exc:  # the loader raises many kinds; all mean "fix the kubeconfig"
            raise ConfigError(
                f"cannot load kubeconfig {shown} (context {chosen['name']!r}): {_one_line(exc)}"
            ) from exc
        cfg.retries = 1  # one retry: a pooled connection may have gone stale while idle
        namespace = chosen.get("context", {}).get("namespace") or "default"
        return cls(ApiClient(cfg), namespace)

    @property
    def server(self) -> str:
        return str(self.configuration.host)

    async def close(self) -> None:
        await asyncio.to_thread(self._api.close)

    # --- raw calls -------------------------------------------------------------------------

    def _open(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, Any]] = (),
        body: Any = None,
        timeout: Any = REQUEST_TIMEOUT,
    ) -> urllib3.BaseHTTPResponse:
        """One request; the raw (unread) response. Blocking: call from a worker thread."""
        params = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query),
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            resp = self._api.call_api(*params, _request_timeout=timeout)
        except ApiException as exc:  # the client's wrapper for TLS failures (status 0)
            raise unreachable(self.server, _one_line(exc.reason)) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise unreachable(self.server, _root_cause(exc)) from exc
        if not 200 <= resp.status <= 299:
            raise _HttpError(resp.status, resp.response.data or b"")
        raw: urllib3.BaseHTTPResponse = resp.response
        return raw

    def _json_sync(
        self, method: str, path: str, query: Sequence[tuple[str, Any]] = (), body: Any = None
    ) -> Any:
        resp = self._open(method, path, query, body)
        try:
            return json.loads(resp.data)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise unreachable(self.server, _root_cause(exc)) from exc

    async def _json(
        self,
        method: str,
        path: str,
        doing: str,
        query: Sequence[tuple[str, Any]] = (),
        body: Any = None,
    ) -> Any:
        """A JSON call; HTTP errors become our errors, worded with `doing`."""
        try:
            return await asyncio.to_thread(self._json_sync, method, path, query, body)
        except _HttpError as exc:
            raise from_status(exc.status, exc.body, doing) from None

    async def _get_or_none(self, path: str, doing: str) -> Manifest | None:
        try:
            obj: Manifest = await asyncio.to_thread(self._json_sync, "GET", path)
            return obj
        except _HttpError as exc:
            if exc.status == 404:
                return None
            raise from_status(exc.status, exc.body, doing) from None

    async def _list(
        self,
        group_version: str,
        kind: str,
        plural: str,
        namespace: str,
        selector: str | None = None,
    ) -> list[Manifest]:
        query = [("labelSelector", selector)] if selector else []
        data = await self._json(
            "GET",
            _path(group_version, namespace, plural),
            f"list {plural} in namespace {namespace!r}",
            query,
        )
        items: list[Manifest] = data.get("items", [])
        for item in items:  # list items carry no kind; the core resolvers rely on it
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", group_version)
        return items

    # --- reading ---------------------------------------------------------------------------

    async def namespace_exists(self, namespace: str) -> bool | None:
        """True/False, or None when we may not look (namespaces are cluster-scoped)."""
        try:
            await asyncio.to_thread(
                self._json_sync, "GET", _path("v1", None, "namespaces", namespace)
            )
            return True
        except _HttpError as exc:
            return False if exc.status == 404 else None

    async def _missing(self, what: str, namespace: str) -> UserError:
        exists = await self.namespace_exists(namespace)
        if exists is False:
            return UserError(f"namespace {namespace!r} not found; pick one with -n")
        maybe = "" if exists else " (or the namespace does not exist)"
        return UserError(
            f"{what} not found in namespace {namespace!r}{maybe}; "
            "`innerloop list` shows what there is"
        )

    async def get_service(self, namespace: str, name: str) -> Manifest:
        svc = await self._get_or_none(
            _path("v1", namespace, "services", name),
            f"get service {name!r} in namespace {namespace!r}",
        )
        if svc is None:
            raise await self._missing(f"service {name!r}", namespace)
        return svc

    async def get_workload(self, ref: WorkloadRef) -> Manifest:
        w = await self._get_or_none(
            _workload_path(ref.kind, ref.namespace, ref.name),
            f"get {ref} in namespace {ref.namespace!r}",
        )
        if w is None:
            raise await self._missing(str(ref), ref.namespace)
        return w

    async def list_workloads(self, namespace: str) -> list[Manifest]:
        """Every Deployment, StatefulSet and ReplicaSet of the namespace."""
        lists = await asyncio.gather(
            *(self._list("apps/v1", kind, plural, namespace) for kind, plural in _WORKLOADS.items())
        )
        return [w for items in lists for w in items]

    async def list_pods(self, namespace: str, selector: str) -> list[Manifest]:
        return await self._list("v1", "Pod", "pods", namespace, selector)

    async def workload_pods(self, workload: Manifest) -> list[Manifest]:
        return await self.list_pods(workload["metadata"]["namespace"], workload_selector(workload))

    async def resolve(self, namespace: str, service: str, spec: PortSpec) -> Resolution:
        """Service → port → workload → container (core.targets), from fresh reads.

        Reads only the owners of the selected pods (ReplicaSet → Deployment, StatefulSet), so a
        user allowed to read just their own kind of workload can intercept it.
        """
        svc = await self.get_service(namespace, service)
        pods = await self.list_pods(namespace, label_selector(service_selector(svc)))
        workloads = await (
            self._owners(namespace, pods) if pods else self.list_workloads(namespace)
        )
        target = resolve_target(svc, spec, pods, workloads)
        [workload] = [
            w
            for w in workloads
            if w["kind"] == target.workload.kind and w["metadata"]["name"] == target.workload.name
        ]
        return Resolution(target=target, service=svc, workload=workload)

    async def _owners(self, namespace: str, pods: Sequence[Manifest]) -> list[Manifest]:
        """The controllers of the pods, and a ReplicaSet's Deployment."""
        found: dict[tuple[str, str], Manifest] = {}
        todo = {
            (ref["kind"], ref["name"])
            for p in pods
            for ref in p["metadata"].get("ownerReferences", [])
            if ref.get("controller")
        }
        while todo:
            kind, name = todo.pop()
            if kind not in _WORKLOADS or (kind, name) in found:
                continue
            obj = await self._get_or_none(
                _workload_path(kind, namespace, name),
                f"get {kind.lower()}/{name} in namespace {namespace!r}",
            )
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

    async def list_services(self, namespace: str) -> list[ServiceSummary]:
        """Services with their ports and the agent / takeover state (for `innerloop list`)."""
        services, workloads = await asyncio.gather(
            self._list("v1", "Service", "services", namespace), self.list_workloads(namespace)
        )
        return summarize_services(services, workloads)

    # --- permissions -----------------------------------------------------------------------

    async def can_i(self, namespace: str, verb: str, resource: str, group: str = "") -> bool:
        """A SelfSubjectAccessReview; `resource` may name a subresource (`pods/portforward`)."""
        plural, _, sub = resource.partition("/")
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": verb,
                    "resource": plural,
                    "subresource": sub,
                    "group": group,
                }
            },
        }
        result = await self._json(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            "check permissions",
            body=review,
        )
        return bool(result.get("status", {}).get("allowed"))

    async def check_permissions(self, namespace: str, needs: Iterable[Permission]) -> None:
        """Raise ClusterError naming every missing permission, before anything is changed."""
        needs = list(needs)
        allowed = await asyncio.gather(*(self.can_i(namespace, v, r, g) for v, r, g in needs))
        missing = [
            f"{v} {r}{'.' + g if g else ''}" for (v, r, g), ok in zip(needs, allowed) if not ok
        ]
        if missing:
            raise ClusterError(
                f"forbidden: your kubeconfig user may not {', '.join(missing)} in namespace "
                f"{namespace!r} (RBAC); ask your cluster admin for those permissions "
                "(docs/usage.md lists what innerloop needs)"
            )

    # --- writing ---------------------------------------------------------------------------

    async def ensure_agent_config_map(self, namespace: str, agent: bytes) -> str:
        """The ConfigMap holding this agent build (content-addressed name); created if absent."""
        name = agent_config_map_name(agent)
        path = _path("v1", namespace, "configmaps", name)
        if await self._get_or_none(path, f"get configmap {name!r}") is not None:
            return name
        try:
            await asyncio.to_thread(
                self._json_sync,
                "POST",
                _path("v1", namespace, "configmaps"),
                (),
                agent_config_map(namespace, agent),
            )
        except _HttpError as exc:
            if exc.status != 409:  # 409: someone else created it meanwhile, same content
                raise from_status(
                    exc.status, exc.body, f"create configmap {name!r} in namespace {namespace!r}"
                ) from None
        return name

    async def _update(
        self, path: str, what: str, namespace: str, change: Callable[[Manifest], Manifest]
    ) -> Manifest:
        """Read, change (a pure builder), replace with the read resourceVersion; on 409 start
        over from a fresh read, so a concurrent edit is never overwritten."""
        for _ in range(UPDATE_ATTEMPTS):
            current = await self._get_or_none(path, f"get {what}")
            if current is None:
                raise await self._missing(what, namespace)
            desired = change(current)
            if desired == current:
                return current
            try:
                updated: Manifest = await asyncio.to_thread(
                    self._json_sync, "PUT", path, (), desired
                )
                return updated
            except _HttpError as exc:
                if exc.status != 409:
                    raise from_status(
                        exc.status, exc.body, f"update {what} in namespace {namespace!r}"
                    ) from None
                log.debug("conflict updating %s; retrying from a fresh read", what)
        raise ClusterError(f"{what} kept changing while innerloop updated it; try again")

    async def update_workload(
        self, ref: WorkloadRef, change: Callable[[Manifest], Manifest]
    ) -> Manifest:
        return await self._update(
            _workload_path(ref.kind, ref.namespace, ref.name), str(ref), ref.namespace, change
        )

    async def update_service(
        self, namespace: str, name: str, change: Callable[[Manifest], Manifest]
    ) -> Manifest:
        return await self._update(
            _path("v1", namespace, "services", name), f"service {name!r}", namespace, change
        )

    async def delete_pod(self, namespace: str, name: str) -> None:
        try:
            await asyncio.to_thread(self._json_sync, "DELETE", _path("v1", namespace, "pods", name))
        except _HttpError as exc:
            if exc.status != 404:
                raise from_status(exc.status, exc.body, f"delete pod {name!r}") from None

    async def wait_rollout(
        self,
        ref: WorkloadRef,
        timeout: float = 180.0,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        """Until the workload's pods all run its current template and are Ready.

        Where no controller replaces pods (ReplicaSet, StatefulSet OnDelete) the pods are
        replaced here, one at a time. Fails fast with the reason when new pods cannot start.
        Cancellable: it only awaits short calls and sleeps.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last = ""
        while True:
            workload = await self.get_workload(ref)
            pods = await self.workload_pods(workload)
            status = rollout_status(workload, pods)
            if status.done:
                return
            problem = rollout_problem(workload, pods)
            if problem:
                raise ClusterError(f"{ref} rollout cannot finish: {problem}")
            for name in status.replace:
                await self.delete_pod(ref.namespace, name)
            if status.message != last and progress is not None:
                progress(status.message)
            last = status.message
            if loop.time() > deadline:
                raise ClusterError(
                    f"{ref} rollout not done after {timeout:.0f} s: {last}; "
                    f"see `kubectl -n {ref.namespace} describe {ref}`"
                )
            await asyncio.sleep(POLL_SECONDS)

    async def wait_service_port(
        self,
        namespace: str,
        service: str,
        port_name: str | None,
        target: int,
        timeout: float = 15.0,
    ) -> bool:
        """Until the Service's EndpointSlices send port `port_name` to `target`.

        kube-proxy programs its rules from the slices, so this is the last change the API can
        show before traffic follows. False when it did not happen in time, or we may not look.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        selector = f"kubernetes.io/service-name={service}"
        while True:
            try:
                slices = await self._list(
                    "discovery.k8s.io/v1", "EndpointSlice", "endpointslices", namespace, selector
                )
            except InnerloopError:
                return False
            ports = [
                p
                for es in slices
                if es.get("endpoints")
                for p in es.get("ports") or []
                if (p.get("name") or None) == port_name
            ]
            if ports and all(p.get("port") == target for p in ports):
                return True
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.1)

    # --- env -------------------------------------------------------------------------------

    async def environment(self, pod: Manifest, container: str) -> ResolvedEnv:
        """The container's env as the kubelet built it in `pod` (Secrets included: never log it)."""
        namespace = pod["metadata"]["namespace"]
        needed = sources(pod, container)

        async def fetch(plural: str, name: str) -> tuple[str, dict[str, str] | None]:
            obj = await self._get_or_none(
                _path("v1", namespace, plural, name),
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
        allocatable = await self._node_allocatable(pod.get("spec", {}).get("nodeName"))
        return resolve(
            pod,
            container,
            {n: d for n, d in cms if d is not None},
            {n: d for n, d in secrets if d is not None},
            allocatable,
        )

    async def _node_allocatable(self, node: str | None) -> dict[str, str]:
        """The kubelet's fallback for unset limits; empty when we may not read nodes."""
        if not node:
            return {}
        try:
            obj = await self._get_or_none(_path("v1", None, "nodes", node), f"get node {node!r}")
        except InnerloopError:
            return {}
        return dict((obj or {}).get("status", {}).get("allocatable", {}))

    # --- pods over time --------------------------------------------------------------------

    def watch_ready_pods(self, namespace: str, selector: str) -> ReadyPods:
        """Snapshots of the Ready pods a selector picks, each time that set changes."""
        return ReadyPods(self, namespace, selector)

    async def port_forward(self, namespace: str, pod: str, port: int) -> PortForward:
        """A Transport to the pod's 127.0.0.1:port through the API server."""
        return await PortForward.open(self.configuration, namespace, pod, port)


def _one_line(what: object) -> str:
    return " ".join(str(what).split()) or type(what).__name__


def _root_cause(exc: BaseException) -> str:
    """urllib3 wraps the reason a few levels deep; the innermost says it best."""
    reason: BaseException = exc
    while True:
        inner = getattr(reason, "reason", None) or reason.__cause__ or reason.__context__
        if not isinstance(inner, BaseException) or inner is reason:
            break
        reason = inner
    return str(reason) or type(reason).__name__


def _signature(pod: Manifest) -> tuple[Any, ...]:
    statuses = pod.get("status", {}).get("containerStatuses", [])
    return (
        pod["metadata"]["name"],
        pod["metadata"].get("uid"),
        pod.get("status", {}).get("podIP"),
        tuple(sorted((c["name"], bool(c.get("ready"))) for c in statuses)),
    )


class ReadyPods:
    """Async iterator of {pod name: pod} for the Ready pods of a selector.

    A list+watch loop runs in its own thread (a watch blocks for minutes, which would starve
    the shared to_thread pool); it re-lists after a 410 and retries transient failures with
    backoff, so a laptop waking from sleep picks up where it was. The iterator yields the newest
    snapshot only (bursts of changes coalesce) and always starts with the current set.
    Permanent failures (401/403/404) end the iteration with the error.
    """

    def __init__(self, gateway: Gateway, namespace: str, selector: str) -> None:
        self._gw = gateway
        self._namespace = namespace
        self._selector = selector
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._latest: dict[str, Manifest] | None = None
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._response: urllib3.BaseHTTPResponse | None = None
        self._delivered: list[tuple[Any, ...]] | None = None
        """Signature of the last snapshot sent (None: nothing sent yet, so the first always is)."""
        self._thread = threading.Thread(
            target=self._run, daemon=True, name=f"watch-pods-{namespace}"
        )
        self._thread.start()

    def __aiter__(self) -> ReadyPods:
        return self

    async def __anext__(self) -> dict[str, Manifest]:
        while True:
            if self._latest is not None:
                snapshot, self._latest = self._latest, None
                return snapshot
            if self._error is not None:
                raise self._error
            if self._stop.is_set():
                raise StopAsyncIteration
            self._changed.clear()
            await self._changed.wait()

    async def __aenter__(self) -> ReadyPods:  # noqa: PYI034 (Self needs Python 3.11)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            response.shutdown()  # unblocks the thread's read
        self._changed.set()

    # the thread ----------------------------------------------------------------------------

    def _publish(self, pods: Mapping[str, Manifest]) -> None:
        ready = {name: p for name, p in pods.items() if pod_ready(p)}
        signature = sorted(_signature(p) for p in ready.values())
        if signature == self._delivered:
            return
        self._delivered = signature

        def deliver() -> None:
            self._latest = ready
            self._changed.set()

        self._loop.call_soon_threadsafe(deliver)

    def _fail(self, exc: BaseException) -> None:
        def deliver() -> None:
            self._error = exc
            self._changed.set()

        self._loop.call_soon_threadsafe(deliver)

    def _run(self) -> None:
        path = _path("v1", self._namespace, "pods")
        backoff = 0.5
        try:
            while not self._stop.is_set():
                try:
                    listing = self._gw._json_sync("GET", path, [("labelSelector", self._selector)])
                    pods = {p["metadata"]["name"]: p for p in listing.get("items", [])}
                    version = listing["metadata"]["resourceVersion"]
                    self._publish(pods)
                    backoff = 0.5
                    while not self._stop.is_set():
                        next_version = self._watch(path, version, pods)
                        if next_version is None:
                            break  # 410 Gone: re-list
                        version = next_version
                except _HttpError as exc:
                    if exc.status in (401, 403, 404):
                        raise from_status(
                            exc.status, exc.body, f"watch pods in namespace {self._namespace!r}"
                        ) from None
                    log.debug("pod watch: HTTP %s; retrying", exc.status)
                except (ClusterError, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                    if self._stop.is_set():
                        return
                    log.debug("pod watch interrupted (%s); retrying in %.1f s", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        except InnerloopError as exc:
            if not self._stop.is_set():
                self._fail(exc)

    def _watch(self, path: str, version: str, pods: dict[str, Manifest]) -> str | None:
        """One watch request; the resourceVersion to go on from, or None to re-list."""
        query = [
            ("labelSelector", self._selector),
            ("watch", "true"),
            ("resourceVersion", version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", WATCH_SECONDS),
        ]
        response = self._gw._open("GET", path, query, timeout=(5.0, WATCH_SECONDS + 30))
        self._response = response
        try:
            for line in response:
                if self._stop.is_set():
                    return version
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object", {})
                kind = event.get("type")
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return None
                    raise _HttpError(int(obj.get("code", 500)), json.dumps(obj).encode())
                version = obj.get("metadata", {}).get("resourceVersion", version)
                if kind == "BOOKMARK":
                    continue
                name = obj["metadata"]["name"]
                if kind == "DELETED":
                    pods.pop(name, None)
                else:
                    pods[name] = obj
                self._publish(pods)
            return version
        finally:
            self._response = None
            response.release_conn()
