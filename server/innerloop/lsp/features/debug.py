"""`innerloop.debugAdapterEndpoint`: where the editor connects for one debug session."""

from __future__ import annotations

from typing import Any

from innerloop.lsp.deps import AdapterEndpoint, Deps
from innerloop.lsp.features.errors import user_errors
from innerloop.lsp.server import InnerloopServer

ENDPOINT_COMMAND = "innerloop.debugAdapterEndpoint"


def setup(server: InnerloopServer, deps: Deps) -> None:
    @server.command(ENDPOINT_COMMAND)
    @user_errors
    async def endpoint(*_args: Any) -> AdapterEndpoint:
        return await deps.debug_adapter.endpoint()
