"""`innerloop.status` and the `innerloop/status` notification pushed on every state change.

Each intercept also says whether a program listens on its local port (`innerloop.lsp.listening`),
so the editor can warn when every request silently goes to the cluster.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypedDict

from innerloop import __version__
from innerloop.lsp.deps import Deps, InterceptView, StatusInfo
from innerloop.lsp.listening import ListenWatch
from innerloop.lsp.server import InnerloopServer

STATUS_COMMAND = "innerloop.status"
STATUS_NOTIFICATION = "innerloop/status"


class StatusPayload(TypedDict):
    version: str
    python: str
    """The interpreter running the server: tells the user which environment is in use."""
    intercepts: list[InterceptView]


def setup(server: InnerloopServer, deps: Deps) -> None:
    subscriptions: list[Callable[[], None]] = []
    last: list[StatusInfo] = []

    def payload(status: StatusInfo) -> StatusPayload:
        return {
            "version": __version__,
            "python": sys.executable,
            "intercepts": [watch.view(i) for i in status["intercepts"]],
        }

    def push(status: StatusInfo) -> None:
        last[:] = [status]
        watch.follow(status["intercepts"])
        server.protocol.notify(STATUS_NOTIFICATION, payload(status))

    def listening_changed() -> None:
        if last:
            server.protocol.notify(STATUS_NOTIFICATION, payload(last[0]))

    watch = ListenWatch(listening_changed)

    @server.command(STATUS_COMMAND)
    async def status(*_args: Any) -> StatusPayload:
        return payload(await deps.intercepts.status())

    def subscribe() -> None:
        subscriptions.append(deps.intercepts.subscribe(push))

    async def unsubscribe() -> None:
        while subscriptions:
            subscriptions.pop()()
        await watch.aclose()

    server.on_initialized.append(subscribe)
    server.on_shutdown.append(unsubscribe)
