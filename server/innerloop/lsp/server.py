"""The innerloop language server class: pygls plus the state every feature shares.

It imports no feature: features import it for its type, and `innerloop.lsp.setup` builds it
and registers them (as esbonio keeps `server.py` apart from `setup.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pygls.lsp.server import LanguageServer

from innerloop import __version__
from innerloop.lsp.protocol import InnerloopProtocol
from innerloop.lsp.settings import Settings

Hook = Callable[[], None]
AsyncHook = Callable[[], Awaitable[None]]


class InnerloopServer(LanguageServer):
    """pygls server plus the state every feature shares.

    pygls allows one handler per LSP method, so `initialized` and `shutdown` are dispatched
    (by `innerloop.lsp.setup`) to the hooks features add, in the order they were added.
    """

    protocol: InnerloopProtocol

    def __init__(self) -> None:
        super().__init__("innerloop", __version__, protocol_cls=InnerloopProtocol)
        self.settings = Settings()
        self.on_initialized: list[Hook] = []
        self.on_shutdown: list[AsyncHook] = []
