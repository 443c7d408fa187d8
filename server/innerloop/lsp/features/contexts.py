"""`innerloop.listContexts`: the kubeconfig's contexts and their namespaces, for the first-run
walkthrough's context pick (extension/src/walkthrough.ts). Read from the file only, so a context
whose cluster is unreachable can still be picked away from."""

from __future__ import annotations

from typing import Any

from innerloop.lsp.deps import ContextList, Deps
from innerloop.lsp.features.errors import user_errors
from innerloop.lsp.server import InnerloopServer

LIST_CONTEXTS = "innerloop.listContexts"


def setup(server: InnerloopServer, deps: Deps) -> None:
    @server.command(LIST_CONTEXTS)
    @user_errors
    async def list_contexts(*_args: Any) -> ContextList:
        return await deps.intercepts.list_contexts()
