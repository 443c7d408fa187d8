"""Whether a program listens on each active intercept's local port.

Nothing listening is not an error of the intercept (the agent serves such requests from the
app in the pod), so it would pass unnoticed: every request goes to the cluster while the status
bar is green. The server probes the port and reports `listening` in the status, which the
editor shows as a warning. A port counts as not listening only after being free for `grace`
seconds, so a program that is still starting (F5 launches it after the intercept is active)
does not raise a false alarm. The probe is a bind (`prechecks.port_in_use`), not a connect: the
user's program never sees an empty connection a second, not even while paused at a breakpoint.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from innerloop.lsp.deps import InterceptInfo, InterceptView
from innerloop.prechecks import port_in_use

log = logging.getLogger(__name__)

PROBED_STATES = frozenset({"active", "paused"})
INTERVAL = 1.0
GRACE = 4.0
HOST = "127.0.0.1"
"""Where the tunnel client delivers, so where a program must listen."""


@dataclass
class _Probe:
    port: int
    task: asyncio.Task[None]
    listening: bool | None = None
    refused_since: float | None = None


class ListenWatch:
    """One probe task per active intercept; `on_change` runs when a `listening` flips."""

    def __init__(
        self,
        on_change: Callable[[], None],
        interval: float = INTERVAL,
        grace: float = GRACE,
    ) -> None:
        self._on_change = on_change
        self._interval = interval
        self._grace = grace
        self._probes: dict[str, _Probe] = {}

    def follow(self, intercepts: list[InterceptInfo]) -> None:
        """Probe the intercepts that route here now; stop probing the others."""
        wanted = {
            i["id"]: i["localPort"]
            for i in intercepts
            if i["state"] in PROBED_STATES and i["localPort"] is not None
        }
        for intercept_id in list(self._probes):
            if wanted.get(intercept_id) != self._probes[intercept_id].port:
                self._probes.pop(intercept_id).task.cancel()
        for intercept_id, port in wanted.items():
            if port is not None and intercept_id not in self._probes:
                task = asyncio.create_task(self._watch(intercept_id), name=f"probe-{port}")
                self._probes[intercept_id] = _Probe(port, task)

    def view(self, info: InterceptInfo) -> InterceptView:
        probe = self._probes.get(info["id"])
        return {**info, "listening": None if probe is None else probe.listening}

    async def _watch(self, intercept_id: str) -> None:
        loop = asyncio.get_running_loop()
        while (probe := self._probes.get(intercept_id)) is not None:
            now = loop.time()
            if port_in_use(probe.port):
                probe.refused_since = None
                self._set(intercept_id, probe, True)
            else:
                probe.refused_since = probe.refused_since or now
                if now - probe.refused_since >= self._grace:
                    self._set(intercept_id, probe, False)
            await asyncio.sleep(self._interval)

    def _set(self, intercept_id: str, probe: _Probe, listening: bool) -> None:
        if self._probes.get(intercept_id) is not probe or probe.listening is listening:
            return
        probe.listening = listening
        if not listening:
            log.warning(
                "%s: nothing listens on %s:%d: its requests are served by the cluster's app "
                "until a program listens there", intercept_id, HOST, probe.port,
            )
        self._on_change()

    async def aclose(self) -> None:
        probes, self._probes = list(self._probes.values()), {}
        for probe in probes:
            probe.task.cancel()
        await asyncio.gather(*(p.task for p in probes), return_exceptions=True)
