"""Code lens above HTTP handlers: "▶ Debug live traffic" and "Intercept".

The lens commands run in the editor (extension/src/codeLens.ts): a debug session of type
`innerloop` for the workspace's Service with a breakpoint on the handler's first statement and
a `pathPrefix` filter for its route. Without a mapping the lens offers to choose the Service.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lsprotocol import types

from innerloop.core.http_handlers import HttpHandler, find_http_handlers, route_path_prefix
from innerloop.lsp.deps import Deps
from innerloop.lsp.server import InnerloopServer
from innerloop.lsp.service_map import ServiceMapping, workspace_mapping

DEBUG_COMMAND = "innerloop.debugHandler"
INTERCEPT_COMMAND = "innerloop.interceptHandler"
CHOOSE_COMMAND = "innerloop.chooseService"
REFRESH_COMMAND = "innerloop.refreshCodeLenses"


def handler_json(handler: HttpHandler, file: str, mapping: ServiceMapping) -> dict[str, Any]:
    """The lens command's argument: the mapping, where to break, and which requests to take."""
    return {
        **mapping.as_json(),
        "file": file,
        "line": handler.body_line,
        "handler": handler.name,
        "path": handler.path,
        "methods": list(handler.methods),
        "match": {"pathPrefix": route_path_prefix(handler.path)},
    }


def lenses(handlers: list[HttpHandler], file: str, mapping: ServiceMapping | None
           ) -> list[types.CodeLens]:
    out: list[types.CodeLens] = []
    for handler in handlers:
        line = handler.line - 1
        where = types.Range(types.Position(line, 0), types.Position(line, 0))
        if mapping is None:
            out.append(types.CodeLens(where, types.Command(
                "Innerloop: choose the Service for this workspace", CHOOSE_COMMAND)))
            continue
        route = " ".join([*handler.methods, handler.path]) if handler.methods else handler.path
        argument = handler_json(handler, file, mapping)
        out.append(types.CodeLens(where, types.Command(
            "▶ Debug live traffic", DEBUG_COMMAND, arguments=[argument])))
        out.append(types.CodeLens(where, types.Command(
            f"Intercept {route}", INTERCEPT_COMMAND, arguments=[argument])))
    return out


def _handlers(file: str, source: str) -> list[HttpHandler]:
    """Parsing can take a while on a big file, and a Django `urls.py` beside it is read."""
    urls = Path(file).with_name("urls.py")
    text = None
    if urls != Path(file) and urls.is_file():
        try:
            text = urls.read_text()
        except (OSError, UnicodeDecodeError):
            text = None
    return find_http_handlers(source, text)


def setup(server: InnerloopServer, deps: Deps) -> None:
    @server.feature(types.TEXT_DOCUMENT_CODE_LENS, types.CodeLensOptions(resolve_provider=False))
    async def code_lens(ls: InnerloopServer, params: types.CodeLensParams) -> list[types.CodeLens]:
        document = ls.workspace.get_text_document(params.text_document.uri)
        file = document.path
        if not file.endswith(".py"):
            return []
        handlers = await asyncio.to_thread(lambda: _handlers(file, document.source))
        if not handlers:
            return []
        return lenses(handlers, file, await workspace_mapping(ls, file))

    @server.command(REFRESH_COMMAND)
    async def refresh(*_args: Any) -> None:
        """The editor changed the mapping: ask it for the lenses again."""
        workspace = server.client_capabilities.workspace
        support = workspace.code_lens if workspace is not None else None
        if support is not None and support.refresh_support:
            await server.workspace_code_lens_refresh_async(None)
