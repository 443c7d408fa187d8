"""What the language server needs from the rest of innerloop, as narrow typed interfaces.

The server is built with a `Deps` value, so the real intercept manager and debug-adapter host are
plugged in at start-up (`innerloop.lsp.__main__`) and tests can hand in their own.
The TypedDicts are the JSON the extension parses (extension/src/protocol.ts): keys are camelCase.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypedDict

from innerloop.core.report import Report
from innerloop.core.request import InterceptRequest
from innerloop.lsp.flows import FlowSource
from innerloop.lsp.settings import Settings

InterceptStateName = Literal["connecting", "active", "paused", "error", "stopping"]
ModeName = Literal["route", "mirror"]


class InterceptInfo(TypedDict):
    id: str
    namespace: str
    service: str
    servicePort: int | str | None
    """None until the Service's port is resolved."""
    localPort: int | None
    state: InterceptStateName
    replicas: int | None
    envFile: str | None
    message: str | None
    scope: str
    """Which requests, for people: `x-dev=me`, `mirror: all requests`; "" for all of them."""
    mode: ModeName
    match: dict[str, Any]
    """The filter as the launch.json `match` object (`{}` for all requests): the editor builds a
    request that matches it (Copy curl Command)."""


class StatusInfo(TypedDict):
    intercepts: list[InterceptInfo]


class InterceptView(InterceptInfo):
    """An intercept as the editor shows it (`innerloop.status`, `innerloop/status`)."""

    listening: bool | None
    """Whether a program listens on 127.0.0.1:localPort; None while unknown (or not active).
    False means every request goes to the cluster's app: the editor warns."""


class ServicePortInfo(TypedDict):
    name: str | None
    port: int
    targetPort: int | str


class ServiceInfo(TypedDict):
    namespace: str
    name: str
    ports: list[ServicePortInfo]
    hasAgent: bool


class TargetList(TypedDict):
    namespaces: list[str]
    namespace: str | None
    """The namespace `services` belong to (the context's namespace when none was asked)."""
    services: list[ServiceInfo]


class ContextInfo(TypedDict):
    name: str
    namespace: str
    """The context's namespace ("default" when it names none, as kubectl)."""
    cluster: str


class ContextList(TypedDict):
    contexts: list[ContextInfo]
    current: str | None
    """The kubeconfig's current context."""
    selected: str | None
    """The `innerloop.context` setting, when set."""


class AdapterEndpoint(TypedDict, total=False):
    """Where the extension connects for one debug session: `port` (+`host`) or `pipe`."""

    host: str
    port: int
    pipe: str
    token: str


class InterceptService(Protocol):
    """The intercept manager (innerloop.intercepts) as the language server uses it.

    Long operations are cancelled with `Task.cancel()`; they must undo what they did before
    re-raising CancelledError.
    """

    def configure(self, settings: Settings) -> None:
        """New kubeconfig/context/namespace/agent image; used by operations started afterwards."""

    async def status(self) -> StatusInfo: ...

    async def list_targets(self, namespace: str | None) -> TargetList: ...

    async def list_contexts(self) -> ContextList:
        """The kubeconfig's contexts, read without reaching any cluster."""
        ...

    async def start(self, request: InterceptRequest, progress: Report) -> InterceptInfo: ...

    async def stop(self, intercept_id: str) -> None: ...

    async def uninstall(self, namespace: str | None, service: str, progress: Report) -> None: ...

    def subscribe(self, callback: Callable[[StatusInfo], None]) -> Callable[[], None]:
        """Calls `callback` on every state change; returns a function that unsubscribes."""
        ...

    async def aclose(self) -> None:
        """The editor is shutting the server down: leave every intercept."""


class DebugAdapterHost(Protocol):
    """The DAP proxy hosted inside the server (innerloop.dap)."""

    async def endpoint(self) -> AdapterEndpoint:
        """A fresh endpoint with a one-time token for one debug session."""
        ...

    async def aclose(self) -> None:
        """Stop listening and end every debug session."""


class WorkloadEnvSources(Protocol):
    """Where each variable of a Service's workload env comes from (hover, diagnostics,
    completion in Python files). Never a Secret's value: Secrets are named with their key."""

    async def env_sources(
        self, namespace: str | None, service: str, service_port: str | None, refresh: bool = False
    ) -> dict[str, str]:
        """Variable → one Markdown line; fetched once per Service, again when `refresh`."""
        ...


@dataclass(frozen=True)
class Deps:
    intercepts: InterceptService
    debug_adapter: DebugAdapterHost
    env: WorkloadEnvSources | None = None
    """None: no env awareness (e.g. a test server without a cluster)."""
    flows: FlowSource | None = None
    """None: no Innerloop view data (request log, cluster tree)."""
