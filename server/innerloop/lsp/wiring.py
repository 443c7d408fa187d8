"""Builds the server's dependencies for `python -m innerloop.lsp` / `innerloop lsp`.

PLACEHOLDER until innerloop.session and innerloop.dap exist: `NotBuiltYet` answers status with
no intercepts and refuses everything else with one clear line. Replace the two constructors in
`default_deps()` with the real session manager and debug-adapter host.
"""

from __future__ import annotations

from collections.abc import Callable

from innerloop.core.errors import ConfigError
from innerloop.lsp.deps import (
    AdapterEndpoint,
    Deps,
    InterceptInfo,
    InterceptSpec,
    Progress,
    SessionStatus,
    TargetList,
)
from innerloop.lsp.settings import Settings


class NotBuiltYet:
    """Stands in for the session manager and the adapter host until they are wired in."""

    def _refuse(self) -> ConfigError:
        return ConfigError(
            "this innerloop build has no session manager yet: intercepts are unavailable"
        )

    def configure(self, settings: Settings) -> None:
        self.settings = settings

    async def status(self) -> SessionStatus:
        return {"intercepts": []}

    async def list_targets(self, namespace: str | None) -> TargetList:
        raise self._refuse()

    async def start(self, spec: InterceptSpec, progress: Progress) -> InterceptInfo:
        raise self._refuse()

    async def stop(self, intercept_id: str) -> None:
        raise self._refuse()

    async def uninstall(self, namespace: str | None, service: str, progress: Progress) -> None:
        raise self._refuse()

    def subscribe(self, callback: Callable[[SessionStatus], None]) -> Callable[[], None]:
        return lambda: None

    async def endpoint(self) -> AdapterEndpoint:
        raise self._refuse()

    async def aclose(self) -> None:
        pass


def default_deps() -> Deps:
    placeholder = NotBuiltYet()
    return Deps(sessions=placeholder, debug_adapter=placeholder)
