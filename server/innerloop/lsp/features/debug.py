"""`innerloop.debugAdapterEndpoint`: where the editor connects for one debug session."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from innerloop.lsp.deps import AdapterEndpoint
from innerloop.lsp.features.errors import user_errors

if TYPE_CHECKING:
    from innerloop.lsp.deps import Deps
    from innerloop.lsp.server import InnerloopServer

ENDPOINT_COMMAND = "innerloop.debugAdapterEndpoint"


def setup(server: InnerloopServer, deps: Deps) -> None:
    @server.command(ENDPOINT_COMMAND)
    @user_errors
    async def endpoint(*_args: Any) -> AdapterEndpoint:
        return await deps.debug_adapter.endpoint()
