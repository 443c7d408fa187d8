"""Hosting the debug adapter: on loopback TCP inside the language server, or over stdio.

On TCP any local user could connect, so launch/attach must bring a one-time token that the
editor got from the language server (`DapEndpoint.new_token`). Over stdio the pipe is private.
"""

from __future__ import annotations

import asyncio
import collections
import importlib
import itertools
import logging
import os
import secrets
import sys
from dataclasses import dataclass, field
from typing import BinaryIO

from innerloop.core.advice import Surface
from innerloop.core.errors import ConfigError
from innerloop.dap.controller import ControllerFactory, InterceptController
from innerloop.dap.proxy import DebugSessionProxy
from innerloop.dap.wire import DapStream

log = logging.getLogger(__name__)


class TokenBook:
    """One-time session tokens. Only the newest `limit` unredeemed tokens stay valid."""

    def __init__(self, limit: int = 256) -> None:
        self._tokens: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._limit = limit

    def issue(self) -> str:
        token = secrets.token_urlsafe(32)
        self._tokens[token] = None
        while len(self._tokens) > self._limit:
            self._tokens.popitem(last=False)
        return token

    def redeem(self, token: str | None) -> bool:
        return token is not None and self._tokens.pop(token, False) is None


SHUTDOWN_GRACE = 10.0


@dataclass
class DapEndpoint:
    """Where the in-process debug adapter listens. Give the editor `host`/`port` and, per debug
    session, a `new_token()` to put into the configuration as `innerloopToken`."""

    host: str
    port: int
    _tokens: TokenBook
    _server: asyncio.Server
    _sessions: dict[asyncio.Task[None], DebugSessionProxy] = field(default_factory=dict)

    def new_token(self) -> str:
        return self._tokens.issue()

    async def aclose(self) -> None:
        """Stop listening and end every session; each stops its intercept and its debugpy."""
        self._server.close()
        for session in self._sessions.values():
            session.close()
        tasks = set(self._sessions)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def start_dap_server(
    controller_factory: ControllerFactory, host: str = "127.0.0.1",
    surface: Surface = Surface.EDITOR,
) -> DapEndpoint:
    """Hosted by the language server: errors advise the editor's settings (`surface`)."""
    tokens = TokenBook()
    ids = itertools.count(1)
    sessions: dict[asyncio.Task[None], DebugSessionProxy] = {}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        name = f"dap-{next(ids)}"
        session = DebugSessionProxy(
            DapStream(reader, writer, f"{name}/client"), controller_factory, tokens, name,
            surface,
        )
        sessions[task] = session
        try:
            await session.run()
        except asyncio.CancelledError:
            # The connection's own task: nobody awaits its result (and Python 3.11's stream
            # server callback would log a cancelled one as an error).
            log.warning("%s: cancelled", name)
        finally:
            del sessions[task]

    server = await asyncio.start_server(serve, host, 0)
    port = server.sockets[0].getsockname()[1]
    log.info("debug adapter listening on %s:%d", host, port)
    return DapEndpoint(host, port, tokens, server, sessions)


async def serve_stdio(
    controller_factory: ControllerFactory, dap_in: BinaryIO, dap_out: BinaryIO
) -> None:
    """One debug session over a pair of pipes (see `take_stdio`)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), dap_in)
    transport, protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), dap_out
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    client = DapStream(reader, writer, "stdio/client")
    await DebugSessionProxy(client, controller_factory, None, "stdio").run()


def take_stdio() -> tuple[BinaryIO, BinaryIO]:
    """This process's stdin/stdout for DAP alone: afterwards fd 0 reads /dev/null and fd 1
    writes to stderr, so neither stray prints nor child processes touch the DAP stream."""
    dap_in = os.fdopen(os.dup(0), "rb", buffering=0)
    dap_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    with open(os.devnull, "rb") as devnull:
        os.dup2(devnull.fileno(), 0)
    return dap_in, dap_out


def controller_factory_from(spec: str) -> ControllerFactory:
    """The ControllerFactory named `module:attribute`, imported when a session first needs it,
    so that a broken import becomes a failed launch the user can read, not a dead adapter."""

    def factory() -> InterceptController:
        module, _, attribute = spec.partition(":")
        try:
            found = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot load the intercept controller {spec!r}: {exc}") from None
        controller: InterceptController = found()
        return controller

    return factory


def run_stdio(controller_factory: ControllerFactory) -> int:
    """`innerloop dap`: serve one debug session over stdio; logs go to stderr.

    The caller (the composition root) chooses what runs the intercepts."""
    logging.basicConfig(
        stream=sys.stderr,
        level=os.environ.get("INNERLOOP_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve_stdio(controller_factory, *take_stdio()))
    return 0
