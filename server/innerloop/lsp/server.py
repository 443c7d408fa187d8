"""The innerloop language server (pygls). Feature modules register their handlers here."""

from __future__ import annotations

import logging
from typing import Any

from pygls.lsp.server import LanguageServer

from innerloop import __version__

log = logging.getLogger(__name__)


def create_server() -> LanguageServer:
    server = LanguageServer("innerloop", __version__)

    @server.command("innerloop.status")
    async def status(_ls: LanguageServer, *_args: Any) -> dict[str, Any]:
        return {"version": __version__, "intercepts": []}

    return server


def serve_stdio() -> None:
    logging.basicConfig(level=logging.INFO)
    create_server().start_io()
