"""`innerloop.status` and the `innerloop/status` notification pushed on every state change."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypedDict

from innerloop import __version__
from innerloop.lsp.deps import Deps, InterceptInfo, StatusInfo
from innerloop.lsp.server import InnerloopServer

STATUS_COMMAND = "innerloop.status"
STATUS_NOTIFICATION = "innerloop/status"


class StatusPayload(TypedDict):
    version: str
    python: str
    """The interpreter running the server: tells the user which environment is in use."""
    intercepts: list[InterceptInfo]


def payload(status: StatusInfo) -> StatusPayload:
    return {"version": __version__, "python": sys.executable, "intercepts": status["intercepts"]}


def setup(server: InnerloopServer, deps: Deps) -> None:
    subscriptions: list[Callable[[], None]] = []

    @server.command(STATUS_COMMAND)
    async def status(*_args: Any) -> StatusPayload:
        return payload(await deps.intercepts.status())

    def push(status: StatusInfo) -> None:
        server.protocol.notify(STATUS_NOTIFICATION, payload(status))

    def subscribe() -> None:
        subscriptions.append(deps.intercepts.subscribe(push))

    async def unsubscribe() -> None:
        while subscriptions:
            subscriptions.pop()()

    server.on_initialized.append(subscribe)
    server.on_shutdown.append(unsubscribe)
