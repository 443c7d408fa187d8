"""Settings from initializationOptions and workspace/didChangeConfiguration, handed to the intercept service."""

from __future__ import annotations

import logging

from lsprotocol import types

from innerloop.lsp.deps import Deps
from innerloop.lsp.server import InnerloopServer
from innerloop.lsp.settings import parse_settings

log = logging.getLogger(__name__)


def setup(server: InnerloopServer, deps: Deps) -> None:
    def apply(raw: object) -> None:
        settings, problems = parse_settings(raw)
        if problems:
            server.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Warning, message="; ".join(problems))
            )
        if settings != server.settings:
            log.info("settings: %s", settings)
        server.settings = settings
        deps.intercepts.configure(settings)

    @server.feature(types.INITIALIZE)
    async def initialize(ls: InnerloopServer, params: types.InitializeParams) -> None:
        apply(params.initialization_options)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def changed(ls: InnerloopServer, params: types.DidChangeConfigurationParams) -> None:
        raw = params.settings
        if raw is None and _can_pull(ls):
            # Pull-model clients send `settings: null` and expect the server to ask.
            items = [types.ConfigurationItem(section="innerloop")]
            (raw,) = await ls.workspace_configuration_async(types.ConfigurationParams(items=items))
        apply(raw)


def _can_pull(server: InnerloopServer) -> bool:
    workspace = server.client_capabilities.workspace
    return workspace is not None and bool(workspace.configuration)
