"""HTTP in the tests: a throwaway HTTP/1.1 app on a loopback port for the tunnel and local-proxy
tests (the listening, the bookkeeping and one h11 connection per client; each test module's
subclass says how it answers), and one GET to the sample echo app over a raw byte stream (a
port-forward), read up to its Content-Length."""

from __future__ import annotations

import asyncio

import h11


class HttpApp:
    """Listens on an ephemeral 127.0.0.1 port (``port`` once started), counts the connections
    it accepts and hands each to ``serve``; closes the connection when ``serve`` returns."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        assert self._server is not None
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.serve(h11.Connection(h11.SERVER), reader, writer)
        finally:
            writer.close()

    async def serve(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        raise NotImplementedError


def echo_get(path: str) -> bytes:
    """An HTTP/1.0 GET of ``path`` from the sample echo app."""
    return f"GET {path} HTTP/1.0\r\nHost: echo\r\n\r\n".encode()


def answer_complete(data: bytes) -> bool:
    """``data`` holds a whole answer: its head and Content-Length bytes of body (a port-forward
    reports the server's close about a second late, so do not wait for EOF)."""
    head, end, body = data.partition(b"\r\n\r\n")
    return bool(end) and len(body) >= _content_length(head)


def answer_body(data: bytes) -> str:
    """The body of a 200 answer (an AssertionError with the head for any other)."""
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), head
    return body.decode()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 1 << 30
