"""Carries the debug sessions of a root session's subprocesses through the root session.

debugpy announces each child process with an attach configuration pointing at its adapter's
client listener. The root session points it here instead, so that wherever the child's session
runs (this process, or another `innerloop dap` started by the editor) its traffic passes the
root session, whose pause counter then sees the child stop and resume.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable

from innerloop.core.dap_launch import Endpoint
from innerloop.core.dap_subprocess import redirect_subprocess, subprocess_target
from innerloop.core.dap_wire import Message
from innerloop.core.errors import ProtocolError
from innerloop.dap.wire import DapStream, open_tcp

log = logging.getLogger(__name__)

Observe = Callable[[str, Message, bool], None]
"""(process key, message, towards the adapter?)"""
Forget = Callable[[str], None]
Redirect = Callable[[Message], Awaitable[Message]]


class ChildRelays:
    """A root session's relays, one per debugpy adapter that announces subprocesses."""

    def __init__(
        self, observe: Observe, forget: Forget, issue_token: Callable[[], str | None], name: str
    ) -> None:
        self._observe = observe
        self._forget = forget
        self._issue_token = issue_token
        self._name = name
        self._relays: dict[Endpoint, ChildRelay] = {}

    async def redirect(self, msg: Message) -> Message:
        """Point a subprocess announcement at the relay to its adapter."""
        target = subprocess_target(msg)
        if target is None:
            return msg
        relay = self._relays.get(target)
        if relay is None:
            relay = ChildRelay(target, self._observe, self._forget, self.redirect, self._name)
            self._relays[target] = relay
        endpoint = await relay.start()
        return redirect_subprocess(msg, endpoint, self._issue_token())

    async def aclose(self) -> None:
        for relay in self._relays.values():
            await relay.aclose()


class ChildRelay:
    def __init__(
        self, target: Endpoint, observe: Observe, forget: Forget, redirect: Redirect, name: str
    ) -> None:
        self._target = target
        self._observe = observe
        self._forget = forget
        self._redirect = redirect
        self._name = name
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._starting = asyncio.Lock()
        self._endpoint: Endpoint | None = None

    async def start(self) -> Endpoint:
        """Listen (once) and return where subprocess sessions should connect."""
        async with self._starting:
            if self._server is None:
                self._server = await asyncio.start_server(self._link, "127.0.0.1", 0)
                port = self._server.sockets[0].getsockname()[1]
                self._endpoint = Endpoint("127.0.0.1", port)
                log.info("%s: relaying subprocesses %s -> %s", self._name, port, self._target)
        assert self._endpoint is not None
        return self._endpoint

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._links):
            task.cancel()
        await asyncio.gather(*self._links, return_exceptions=True)

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        key = f"{self._name}/child-{next(self._ids)}"
        client = DapStream(reader, writer, f"{key}/client")
        try:
            adapter = await open_tcp(self._target.host, self._target.port, f"{key}/debugpy")
        except OSError as exc:
            log.warning("%s: cannot reach debugpy at %s: %s", key, self._target, exc)
            await client.aclose()
            self._links.discard(task)
            return
        pipes = {
            asyncio.create_task(self._pipe(client, adapter, key, to_adapter=True)),
            asyncio.create_task(self._pipe(adapter, client, key, to_adapter=False)),
        }
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            await client.aclose()
            await adapter.aclose()
            self._forget(key)
            self._links.discard(task)
            log.info("%s: subprocess session ended", key)

    async def _pipe(self, src: DapStream, dst: DapStream, key: str, to_adapter: bool) -> None:
        try:
            while (msg := await src.receive()) is not None:
                self._observe(key, msg, to_adapter)
                if not to_adapter and subprocess_target(msg) is not None:
                    msg = await self._redirect(msg)
                dst.send(msg)
        except ProtocolError as exc:
            log.warning("%s: %s broke the protocol: %s", key, src.name, exc)
