"""Forwards innerloop's stdlib logging to the editor (window/logMessage)."""

from __future__ import annotations

import asyncio
import logging
import threading

from lsprotocol import types

from innerloop.lsp.deps import Deps
from innerloop.lsp.server import InnerloopServer

_LEVELS = (
    (logging.ERROR, types.MessageType.Error),
    (logging.WARNING, types.MessageType.Warning),
    (logging.INFO, types.MessageType.Info),
)


def message_type(levelno: int) -> types.MessageType:
    for level, kind in _LEVELS:
        if levelno >= level:
            return kind
    return types.MessageType.Debug


class ClientLogHandler(logging.Handler):
    """Sends records as window/logMessage; records from worker threads hop onto the loop."""

    def __init__(self, server: InnerloopServer, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.DEBUG)
        self._server = server
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            params = types.LogMessageParams(
                type=message_type(record.levelno), message=self.format(record)
            )
        except Exception:  # noqa: BLE001 - as stdlib handlers do: a bad record must not crash the caller
            self.handleError(record)
            return
        if threading.get_ident() == self._loop_thread:
            self._server.window_log_message(params)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._server.window_log_message, params)


def setup(server: InnerloopServer, _deps: Deps) -> None:
    root = logging.getLogger("innerloop")
    handlers: list[ClientLogHandler] = []

    def attach() -> None:
        # Only after `initialized` may the server talk freely to the client. From then on the
        # client has the log: not also stderr, which editors show again, as errors.
        handler = ClientLogHandler(server, asyncio.get_running_loop())
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False
        handlers.append(handler)

    async def detach() -> None:
        for handler in handlers:
            root.removeHandler(handler)
        handlers.clear()
        root.propagate = True

    server.on_initialized.append(attach)
    server.on_shutdown.append(detach)
