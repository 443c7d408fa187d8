"""Issue 12, snag 1: the Debug Console tells the truth about where requests go while paused.

Once a debug session's intercept was stopped from the status bar or the palette (and maybe
started again, not tied to the debugger), a breakpoint must not say "new requests are served by
the cluster": the session no longer routes anything, and another intercept may send requests
to the paused program, where they wait.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from innerloop.core.advice import Surface
from innerloop.core.request import InterceptRequest, PortSpec
from innerloop.dap.session_intercept import _Pauser
from innerloop.intercepts.debug_controller import _Handle
from innerloop.intercepts.manager import InterceptManager


@dataclass
class FakeIntercept:
    request: InterceptRequest
    namespace: str = "shop"
    paused: list[bool] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.request.key

    async def set_paused(self, paused: bool) -> None:
        self.paused.append(paused)


DEBUGGED = InterceptRequest("orders", "shop", PortSpec(80, 8080))


async def pause_once(manager: InterceptManager, mine: FakeIntercept) -> list[str]:
    said: list[str] = []
    handle = _Handle(manager, mine, {}, said.append)  # type: ignore[arg-type]
    pauser = _Pauser(handle, DEBUGGED, said.append, "dap-1", Surface.EDITOR)
    pauser.want(True)
    await pauser.idle()
    return said


async def test_while_the_session_holds_its_intercept_pausing_is_applied() -> None:
    manager = InterceptManager(tool="editor")
    mine = FakeIntercept(DEBUGGED)
    manager.intercepts[mine.id] = mine  # type: ignore[assignment]
    assert await pause_once(manager, mine) == [
        "paused: new requests are served by the cluster until you continue"
    ]
    assert mine.paused == [True]


async def test_an_intercept_stopped_outside_the_session_is_said_so() -> None:
    manager = InterceptManager(tool="editor")
    mine = FakeIntercept(DEBUGGED)
    (line,) = await pause_once(manager, mine)
    assert "stopped outside the session" in line and "served by the cluster's app" in line
    assert not line.startswith("paused:")
    assert mine.paused == []


async def test_a_palette_intercept_that_replaced_it_holds_requests_at_the_paused_program() -> None:
    manager = InterceptManager(tool="editor")
    mine = FakeIntercept(DEBUGGED)
    palette = FakeIntercept(InterceptRequest("orders", "shop", PortSpec(80, 8080)))
    manager.intercepts[palette.id] = palette  # type: ignore[assignment]
    (line,) = await pause_once(manager, mine)
    assert "not tied to this debugger" in line
    assert "localhost:8080 wait while this program is paused" in line
    assert "served by the cluster" not in line
    assert mine.paused == palette.paused == []
