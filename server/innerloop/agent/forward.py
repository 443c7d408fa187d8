"""Plain TCP forwarding to the app in the pod, with half-close both ways."""

from __future__ import annotations

import asyncio
import logging

from innerloop.tunnel.sockets import abort, tune

log = logging.getLogger(__name__)
READ_SIZE = 64 * 1024


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


async def splice(a_reader: asyncio.StreamReader, a_writer: asyncio.StreamWriter,
                 b_reader: asyncio.StreamReader, b_writer: asyncio.StreamWriter) -> None:
    """Copy both ways until both sides finished; a reset on either side resets the other."""
    tasks = [asyncio.ensure_future(_copy(a_reader, b_writer)),
             asyncio.ensure_future(_copy(b_reader, a_writer))]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
    if any(not t.cancelled() and t.exception() is not None for t in done) or pending:
        abort(a_writer)
        abort(b_writer)
    else:
        a_writer.close()
        b_writer.close()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(READ_SIZE):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()
