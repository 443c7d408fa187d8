"""Two sockets joined both ways, with half-close: the agent's path to the app, the local proxy's
path to a forwarder or a direct connection."""

from __future__ import annotations

import asyncio

from innerloop.tunnel.sockets import abort

READ_SIZE = 64 * 1024


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
