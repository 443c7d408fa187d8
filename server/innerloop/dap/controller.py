"""The narrow interface between the debug adapter and whatever runs intercepts.

The intercept manager implements it (`intercepts.debug_controller`); the adapter only knows these
three calls. Each debug session that intercepts (launch, or attach to a running debugpy) calls
`start` once, then `set_paused` as breakpoints stop and resume its processes, then `stop` exactly
once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from innerloop.core.report import Report
from innerloop.core.request import InterceptRequest

__all__ = [
    "ControllerFactory",
    "InterceptController",
    "InterceptHandle",
]

class InterceptHandle(Protocol):
    """One active intercept, owned by one debug session."""

    @property
    def env(self) -> Mapping[str, str]:
        """The workload's environment, for the launched program (launch env/envFile win)."""
        ...

    async def set_paused(self, paused: bool) -> None:
        """A process of the session stopped (True) or all of them run again (False).

        While paused, new requests go to the cluster app or are held, per
        `InterceptRequest.while_paused`. Called only when the state flips, never concurrently.
        """
        ...

    async def stop(self, keep: bool) -> None:
        """The debug session ended. keep=True: leave the intercept running (resumed first).

        keep=False may come while paused: leaving hands new and held requests to the app."""
        ...


class InterceptController(Protocol):
    async def start(self, request: InterceptRequest, report: Report) -> InterceptHandle:
        """Start (or reuse) the intercept; return once live traffic reaches `request.port.local_port`.

        Raise `innerloop.core.errors.InnerloopError` with one actionable line on failure. If the
        debug client disconnects meanwhile, the call is cancelled and must undo what it did.
        """
        ...


ControllerFactory = Callable[[], InterceptController]
"""Called once per debug session that intercepts."""
