"""The debug adapter proxy (innerloop.dap) hosted inside the language server.

It listens on 127.0.0.1 from the first debug session on; each session gets a one-time token
that the editor puts into its configuration (`innerloopToken`), so other local users cannot
drive it.
"""

from __future__ import annotations

import asyncio

from innerloop.dap.controller import ControllerFactory
from innerloop.dap.server import DapEndpoint, start_dap_server
from innerloop.lsp.deps import AdapterEndpoint


class HostedDebugAdapter:
    def __init__(self, controller_factory: ControllerFactory) -> None:
        self._controller_factory = controller_factory
        self._endpoint: DapEndpoint | None = None
        self._lock = asyncio.Lock()

    async def endpoint(self) -> AdapterEndpoint:
        async with self._lock:
            if self._endpoint is None:
                self._endpoint = await start_dap_server(self._controller_factory)
            endpoint = self._endpoint
        return {"host": endpoint.host, "port": endpoint.port, "token": endpoint.new_token()}

    async def aclose(self) -> None:
        async with self._lock:
            endpoint, self._endpoint = self._endpoint, None
        if endpoint is not None:
            await endpoint.aclose()
