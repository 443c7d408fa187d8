"""A DAP peer over an asyncio byte stream: the core parser in, the core encoder out."""

from __future__ import annotations

import asyncio
import collections
import logging

from innerloop.core.dap_wire import DapParser, Message, encode

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024


class DapStream:
    """One connection to a DAP peer.

    `send` is synchronous so that messages leave in exactly the order the proxy decided them,
    whatever it awaits in between; DAP traffic is small enough to buffer.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = DapParser()
        self._ready: collections.deque[Message] = collections.deque()
        self.name = name

    async def receive(self) -> Message | None:
        """The next message, or None once the peer closed the stream.

        Raises RemoteProtocolError on malformed input.
        """
        while not self._ready:
            try:
                data = await self._reader.read(_CHUNK)
            except ConnectionError:
                data = b""
            if not data:
                self._parser.eof()
                return None
            self._ready.extend(self._parser.feed(data))
        msg = self._ready.popleft()
        log.debug("%s -> %s", self.name, msg)
        return msg

    def send(self, msg: Message) -> None:
        if self._writer.is_closing():
            log.debug("%s closed; dropped %s", self.name, msg)
            return
        log.debug("%s <- %s", self.name, msg)
        self._writer.write(encode(msg))

    def close(self) -> None:
        """Hang up; a pending `receive` then sees the end of the stream."""
        self._writer.close()

    async def aclose(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, BrokenPipeError):
            pass


async def open_tcp(host: str, port: int, name: str) -> DapStream:
    reader, writer = await asyncio.open_connection(host, port)
    return DapStream(reader, writer, name)
