"""The debug adapter's intercept controller (innerloop.dap.controller), over the session manager.

The adapter itself tells the user when the intercept starts, pauses and ends; this side adds
only what the adapter cannot know (progress of the start, how many replicas, the env's fate).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from innerloop.clusternet.network import ClusterNetwork
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
        await self._intercept.set_paused(paused)

    async def cluster_network(self, base: Mapping[str, str]) -> Mapping[str, str]:
        """The launched program's cluster network; it lives until `stop`."""
        if self._network is None:
            self._network = await self._manager.cluster_network(self._intercept)
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


class DebugInterceptController:
    """Starts (or reuses) the session manager's intercept for one debug session."""

    def __init__(self, manager: InterceptManager) -> None:
        self._manager = manager

    async def start(self, request: InterceptRequest, report: Report) -> _Handle:
        intercept = await self._manager.start(request, report=report)
        try:
            resolved = await self._manager.environment(intercept)
        except BaseException:
            await self._manager.leave(intercept)
            raise
        for warning in resolved.warnings:
            report(warning)
        replicas = intercept.tunnels.connected if intercept.tunnels else 0
        report(
            f"{replicas} replica(s) route to localhost:{request.port.local_port}; the program gets "
            f"{len(resolved.values)} variables of the workload's env"
        )
        return _Handle(self._manager, intercept, resolved.values, report)


_standalone: InterceptManager | None = None


def controller_factory() -> InterceptController:
    """For `innerloop dap` over stdio: one manager per process, configured from the environment."""
    global _standalone
    if _standalone is None:
        _standalone = InterceptManager(
            ManagerConfig(
                kubeconfig=os.environ.get("KUBECONFIG") or None,
                context=os.environ.get("INNERLOOP_CONTEXT") or None,
                namespace=os.environ.get("INNERLOOP_NAMESPACE") or None,
                agent_image=os.environ.get("INNERLOOP_AGENT_IMAGE") or ManagerConfig.agent_image,
            ),
            tool="dap",
        )
    return DebugInterceptController(_standalone)
