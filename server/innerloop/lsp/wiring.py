"""Builds the server's dependencies for `python -m innerloop.lsp` / `innerloop lsp`: one session
manager shared by the LSP commands and the hosted debug adapter, so intercepts started by F5
show in the status bar like any other."""

from __future__ import annotations

from innerloop.lsp.dap_host import HostedDebugAdapter
from innerloop.lsp.deps import Deps
from innerloop.lsp.sessions import ManagedSessions
from innerloop.session import SessionController, SessionManager


def default_deps() -> Deps:
    manager = SessionManager(tool="editor")
    return Deps(
        sessions=ManagedSessions(manager),
        debug_adapter=HostedDebugAdapter(lambda: SessionController(manager)),
    )
