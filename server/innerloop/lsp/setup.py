"""Builds the innerloop language server: a thin shell that translates LSP to the intercept manager.

Features live in `innerloop.lsp.features`, each a module with `setup(server, deps)`, all
registered in `FEATURES` below; handlers are async and do no blocking I/O on the loop.
"""

from __future__ import annotations

import logging
import sys

from lsprotocol import types

from innerloop.lsp.deps import Deps
from innerloop.lsp.features import (
    cluster_tree,
    code_lens,
    contexts,
    debug,
    env_awareness,
    errors,
    intercepts,
    log,
    request_log,
    settings,
    status,
)
from innerloop.lsp.server import InnerloopServer
from innerloop.lsp.wiring import default_deps

# Hooks run in registration order, so `log` comes last: it detaches after everything else.
FEATURES = (
    settings.setup, status.setup, intercepts.setup, contexts.setup, debug.setup, errors.setup,
    code_lens.setup, env_awareness.setup, request_log.setup, cluster_tree.setup, log.setup,
)


def create_server(deps: Deps) -> InnerloopServer:
    server = InnerloopServer()
    # On shutdown, debug sessions end first (each stops its intercept), then the rest leave.
    server.on_shutdown += [deps.debug_adapter.aclose, deps.intercepts.aclose]
    for setup in FEATURES:
        setup(server, deps)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: InnerloopServer, _params: types.InitializedParams) -> None:
        for hook in ls.on_initialized:
            hook()

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: InnerloopServer, *_args: object) -> None:
        for hook in ls.on_shutdown:
            await hook()

    return server


def serve_stdio(deps: Deps | None = None) -> None:
    """Runs the server on stdin/stdout; stderr gets warnings (innerloop's own log goes to the editor)."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s")
    create_server(deps if deps is not None else default_deps()).start_io()
