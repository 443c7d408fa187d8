"""The debug adapter's intercept controller (innerloop.dap.controller), over the intercept manager.

The adapter itself tells the user when the intercept starts, pauses and ends; this side adds
only what the adapter cannot know (progress of the start, how many replicas, the env's fate).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from innerloop.clusternet.network import ClusterNetwork
from innerloop.core.errors import UserError
from innerloop.core.report import Report
from innerloop.core.request import InterceptRequest
from innerloop.dap.controller import InterceptController
from innerloop.intercepts.intercept import Intercept
from innerloop.intercepts.manager import InterceptManager, ManagerConfig


class _Handle:
    def __init__(
        self, manager: InterceptManager, intercept: Intercept, env: Mapping[str, str],
        report: Report,
    ) -> None:
        self._manager = manager
        self._intercept = intercept
        self._env = dict(env)
        self._report = report
        self._network: ClusterNetwork | None = None

    @property
    def env(self) -> Mapping[str, str]:
        return self._env

    async def set_paused(self, paused: bool) -> None:
        """Only while this session still holds its intercept: one stopped from the status bar
        or the palette no longer routes here, and saying so beats a false "served by the
        cluster" (another intercept of the Service may send requests to this paused program)."""
        current = self._manager.intercepts.get(self._intercept.id)
        if current is not self._intercept:
            raise UserError(not_held_line(self._intercept, current))
        if self._manager.request_log is not None:  # the editor's view marks requests "held"
            self._manager.request_log.set_paused(self._intercept.id, paused)
        await self._intercept.set_paused(paused)

    async def cluster_network(self, base: Mapping[str, str]) -> Mapping[str, str]:
        """The launched program's cluster network; it lives until `stop`."""
        if self._network is None:
            self._network = await self._manager.cluster_network(self._intercept, self._report)
            self._report(f"the program reaches the {len(self._network.services)} Services in "
                         f"view by name; its connections leave from the workload's pods")
        return self._network.env(base)

    async def stop(self, keep: bool) -> None:
        """Kept: nothing to do, the adapter resumed routing first (and the state machine
        refuses a second resume). The program's cluster network ends with the session."""
        network, self._network = self._network, None
        if network is not None:
            await network.aclose()
        if not keep:
            await self._manager.leave(self._intercept)


def not_held_line(mine: Intercept, current: Intercept | None) -> str:
    what = f"{mine.request.service}.{mine.namespace}"
    if current is None:
        return (f"this debug session no longer holds its intercept of {what}: it was stopped "
                "outside the session (status bar or palette), so new requests are served by "
                "the cluster's app")
    return (f"this debug session no longer holds its intercept of {what}: it was stopped "
            "outside the session and intercepted again, not tied to this debugger; requests it "
            f"routes to localhost:{current.request.port.local_port} wait while this program "
            "is paused")


class DebugInterceptController:
    """Starts (or reuses) the intercept manager's intercept for one debug session.

    A launch configuration's `context` other than the manager's gets a manager of its own
    (one per context, kept in `others`, which the caller shares between debug sessions), since a
    manager talks to one cluster.
    """

    def __init__(
        self, manager: InterceptManager, others: dict[str, InterceptManager] | None = None
    ) -> None:
        self._manager = manager
        self._others = {} if others is None else others

    def _manager_for(self, context: str | None) -> InterceptManager:
        base = self._manager
        if context is None or context == base.config.context:
            return base
        if context not in self._others:
            self._others[context] = InterceptManager(replace(base.config, context=context),
                                                     client_id=base.client_id, tool=base.tool)
            self._others[context].request_log = base.request_log  # one log in the editor
        return self._others[context]

    async def start(self, request: InterceptRequest, report: Report) -> _Handle:
        manager = self._manager_for(request.context)
        intercept = await manager.start(request, report=report)
        try:
            resolved = await manager.environment(intercept)
        except BaseException:
            await manager.leave(intercept)
            raise
        for warning in resolved.warnings:
            report(warning)
        replicas = intercept.tunnels.connected if intercept.tunnels else 0
        report(
            f"{replicas} replica(s) route to localhost:{request.port.local_port}; the program gets "
            f"{len(resolved.values)} variables of the workload's env"
        )
        return _Handle(manager, intercept, resolved.values, report)


_standalone: InterceptManager | None = None
_standalone_others: dict[str, InterceptManager] = {}


def controller_factory(config: ManagerConfig | None = None) -> InterceptController:
    """For `innerloop dap` over stdio: one manager per process, configured by its flags
    (`--kubeconfig`, `--context`, `--namespace`, `--agent-image`, as `innerloop intercept`'s)."""
    global _standalone
    if _standalone is None:
        _standalone = InterceptManager(config or ManagerConfig(), tool="dap")
    return DebugInterceptController(_standalone, _standalone_others)
