"""`innerloop/tree`: the nodes of the editor's Innerloop view, one level per request (the tree
asks as the user expands it): `{"node": "intercepts"}` (the active intercepts, who holds them,
since when, their tunnels per replica), `"contexts"`, `"namespaces"`, `"services"` (with a
`namespace`: ports, replicas, whether an agent runs beside them)."""

from __future__ import annotations

from typing import Any

from innerloop.core.errors import UserError
from innerloop.lsp.deps import Deps
from innerloop.lsp.features.errors import user_errors
from innerloop.lsp.flows import param
from innerloop.lsp.server import InnerloopServer

TREE = "innerloop/tree"
NODES = ("intercepts", "contexts", "namespaces", "services")


def setup(server: InnerloopServer, deps: Deps) -> None:
    flows = deps.flows
    if flows is None:
        return

    @server.feature(TREE)
    @user_errors
    async def tree(_ls: InnerloopServer, params: Any) -> Any:
        node = param(params, "node")
        if node == "intercepts":
            return {"intercepts": flows.intercepts()}
        if node == "contexts":
            return await deps.intercepts.list_contexts()
        if node == "namespaces":
            return await flows.namespaces()
        if node == "services":
            namespace = param(params, "namespace")
            if not isinstance(namespace, str) or not namespace:
                raise UserError("innerloop/tree: a services node needs its namespace")
            return {"namespace": namespace, "services": await flows.services(namespace)}
        raise UserError(f"innerloop/tree: unknown node {node!r}; one of {', '.join(NODES)}")
