"""The control socket: where the resolver hook in a launched Python process asks what a name is.

A Unix socket in a private directory (0700; the socket 0600); one JSON request per line, one
reply per line, many per connection (codec: `innerloop.core.cluster_names`). What a name means
is decided by the injected `resolve(host, port)`, so tests and the forwarder table plug in alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import TypeAlias

from innerloop.core.cluster_names import (
    MAX_LINE,
    ControlMessageError,
    ResolveResult,
    encode_error,
    encode_result,
    parse_request,
)
from innerloop.paths import runtime_dir

log = logging.getLogger(__name__)

Resolver: TypeAlias = Callable[[str, int | None], Awaitable[ResolveResult] | ResolveResult]
"""`resolve(host, port)`; port None: asked without one (`gethostbyname`)."""

CONTROL_DIR = "innerloop-net"


def control_path(name: str | None = None) -> Path:
    """A fresh socket path under the user's runtime dir: `$XDG_RUNTIME_DIR/innerloop-net/<name>.sock`."""
    return runtime_dir(CONTROL_DIR) / f"{name or secrets.token_hex(6)}.sock"


class ControlServer:
    """Serves `resolve` on a Unix socket until closed; closing removes the socket file."""

    def __init__(self, path: Path, resolve: Resolver) -> None:
        self.path = path
        self._resolve = resolve
        self._server: asyncio.AbstractServer | None = None
        self._clients: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path.parent, 0o700)  # mkdir's mode does not apply to an existing dir
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a crashed run; the name is ours (random or given)
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=MAX_LINE + 1
        )
        os.chmod(self.path, 0o600)
        log.debug("control socket %s serving", self.path)

    async def close(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        for writer in self._clients:
            writer.close()  # the handler's read ends, and it finishes on its own
        await asyncio.gather(*self._clients.values(), return_exceptions=True)
        await server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        log.debug("control socket %s closed", self.path)

    async def __aenter__(self) -> ControlServer:  # noqa: PYI034 (Self needs Python 3.11)
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients[writer] = task
        try:
            while self._server is not None and (line := await reader.readline()):
                writer.write(await self._answer(line))
                await writer.drain()
        except (ValueError, ConnectionError) as e:  # ValueError: a line over the limit
            with contextlib.suppress(ConnectionError):
                writer.write(encode_error(str(e)))
                await writer.drain()
        finally:
            del self._clients[writer]
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, line: bytes) -> bytes:
        try:
            request = parse_request(line)
        except ControlMessageError as e:
            return encode_error(str(e))
        try:
            answer = self._resolve(request.host, request.port)
            result = await answer if isinstance(answer, Awaitable) else answer
        except Exception as e:  # the hook falls back as if we were gone; the log says why
            log.exception("resolving %s:%s failed", request.host, request.port)
            return encode_error(f"resolving {request.host}:{request.port} failed: {e}")
        return encode_result(result)
