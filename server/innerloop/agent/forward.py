"""Plain TCP forwarding to the app in the pod, with half-close both ways."""

from __future__ import annotations

import asyncio
import logging

from innerloop.tunnel.sockets import abort, tune
from innerloop.tunnel.splice import splice

log = logging.getLogger(__name__)


async def forward_to_app(host: str, port: int, caller_reader: asyncio.StreamReader,
                         caller_writer: asyncio.StreamWriter, replay: bytes = b"") -> None:
    """Serve the caller from the app; ``replay`` (bytes already taken from it) goes first."""
    try:
        app_reader, app_writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        log.warning("app at %s:%d refused the connection: %s", host, port, exc)
        abort(caller_writer)
        return
    tune(app_writer)
    if replay:
        app_writer.write(replay)
    await splice(caller_reader, caller_writer, app_reader, app_writer)
