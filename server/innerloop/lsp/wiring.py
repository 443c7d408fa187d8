"""Builds the server's dependencies for `python -m innerloop.lsp` / `innerloop lsp`: one intercept
manager shared by the LSP commands and the hosted debug adapter, so intercepts started by F5
show in the status bar like any other."""

from __future__ import annotations

from innerloop.intercepts.debug_controller import DebugInterceptController
from innerloop.intercepts.manager import InterceptManager
from innerloop.lsp.dap_host import HostedDebugAdapter
from innerloop.lsp.deps import Deps
from innerloop.lsp.flows import EditorFlows
from innerloop.lsp.intercept_service import EditorIntercepts


def default_deps() -> Deps:
    manager = InterceptManager(tool="editor")
    other_contexts: dict[str, InterceptManager] = {}
    editor = EditorIntercepts(manager)
    return Deps(
        intercepts=editor,
        debug_adapter=HostedDebugAdapter(
            lambda: DebugInterceptController(manager, other_contexts)
        ),
        env=editor,
        flows=EditorFlows(manager),
    )
