"""The intercept of one debug session: paused while any of its processes is stopped, left once.

The proxy feeds it the session's DAP traffic (and its subprocesses', through their relays); it
turns the pause counter's flips into `InterceptHandle.set_paused` calls and ends with one `stop`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from innerloop.core.advice import Surface
from innerloop.core.dap_pause import PauseCounter
from innerloop.core.dap_say import say_active, say_failure, say_intercepting, say_left, say_paused
from innerloop.core.dap_wire import Message
from innerloop.core.errors import is_expected
from innerloop.core.report import Report
from innerloop.core.request import InterceptRequest
from innerloop.dap.controller import InterceptController, InterceptHandle

log = logging.getLogger(__name__)


@runtime_checkable
class NetworkHandle(Protocol):
    """An intercept handle that can also give the launched program the cluster network."""

    async def cluster_network(self, base: Mapping[str, str]) -> Mapping[str, str]:
        """Start it (it ends with `stop`); the variables to add to the program's env `base`."""
        ...


class SessionIntercept:
    def __init__(
        self, handle: InterceptHandle, request: InterceptRequest, say: Report, name: str,
        surface: Surface = Surface.CLI,
    ) -> None:
        self._handle = handle
        self._say = say
        self._name = name
        self._surface = surface
        self._counter = PauseCounter()
        self._pauser: _Pauser | None = _Pauser(handle, request, say, name, surface)
        self._leaving: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls, controller: InterceptController, request: InterceptRequest, say: Report, name: str,
        surface: Surface = Surface.CLI,
    ) -> SessionIntercept:
        say(say_intercepting(request))
        handle = await controller.start(request, say)
        intercept = cls(handle, request, say, name, surface)
        say(say_active(request))
        return intercept

    @property
    def env(self) -> Mapping[str, str]:
        return self._handle.env

    async def launch_env(
        self, env: Mapping[str, str | None], cluster_network: bool
    ) -> dict[str, str | None]:
        """The debuggee's env changes, plus the cluster network's variables when asked for
        (`clusterNetwork`, on by default) and the controller can give them."""
        if not cluster_network:
            return dict(env)
        if not isinstance(self._handle, NetworkHandle):
            log.info("%s: the intercept controller gives no cluster network", self._name)
            return dict(env)
        base = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
        return {**env, **await self._handle.cluster_network(base)}

    def observe(self, process: str, msg: Message, to_adapter: bool) -> None:
        """A message of `process`'s debug session (adapter-side numbering)."""
        if to_adapter:
            self._counter.to_adapter(process, msg)
            return
        self._flip(self._counter.from_adapter(process, msg))

    def forget(self, process: str) -> None:
        """`process`'s debug session ended."""
        self._flip(self._counter.forget(process))

    def _flip(self, paused: bool | None) -> None:
        if paused is not None and self._pauser is not None:
            self._pauser.want(paused)

    async def leave(self, keep: bool) -> None:
        """Stop the intercept once, however many paths end the session at the same time."""
        if self._leaving is None:
            self._leaving = asyncio.create_task(self._leave(keep))
        await asyncio.shield(self._leaving)

    async def _leave(self, keep: bool) -> None:
        pauser, self._pauser = self._pauser, None  # later stops no longer pause anything
        if pauser is not None:
            # Kept: traffic comes back here. Left while paused: stay paused until the release
            # hands new and held requests to the cluster app; resuming first would send them
            # to a debuggee that is stopped at a breakpoint or already terminated.
            await (pauser.settle() if keep else pauser.idle())
        try:
            await self._handle.stop(keep)
        except Exception as exc:
            line = say_failure(exc, self._surface)
            log.warning("%s: stopping the intercept failed: %s", self._name, line,
                        exc_info=not is_expected(exc))
            self._say(f"could not leave the intercept: {line}")
        else:
            self._say(say_left(keep))


class _Pauser:
    """Applies the latest wanted paused state to the intercept, one controller call at a time,
    skipping states that were already superseded."""

    def __init__(
        self, handle: InterceptHandle, request: InterceptRequest, say: Report, name: str,
        surface: Surface,
    ) -> None:
        self._handle = handle
        self._request = request
        self._say = say
        self._name = name
        self._surface = surface
        self._wanted = False
        self._applied = False
        self._task: asyncio.Task[None] | None = None

    def want(self, paused: bool) -> None:
        self._wanted = paused
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._converge())

    async def settle(self) -> None:
        """Resume routing before the intercept is kept."""
        self.want(False)
        await self.idle()

    async def idle(self) -> None:
        """Wait for the controller call in flight, so that none overlaps `stop`."""
        if self._task is not None:
            await self._task

    async def _converge(self) -> None:
        while self._applied != self._wanted:
            target = self._wanted
            try:
                await self._handle.set_paused(target)
            except Exception as exc:
                line = say_failure(exc, self._surface)
                log.warning("%s: set_paused(%s) failed: %s", self._name, target, line,
                            exc_info=not is_expected(exc))
                self._say(f"could not switch routing: {line}")
                return
            self._applied = target
            self._say(say_paused(self._request, target))
