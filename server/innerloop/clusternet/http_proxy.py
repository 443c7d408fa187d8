"""The proxy's HTTP/1.1 side, on h11: CONNECT tunnels and absolute-form forwarding.

``curl``, ``requests`` and Go send ``GET http://payments/x HTTP/1.1`` for an http:// URL through
HTTP_PROXY; we send it on in origin-form (``GET /x``) to what the name resolves to, streaming
bodies both ways, and keep the client's connection alive across requests, whatever host each
one names (one upstream at a time, replaced when host:port changes). Hop-by-hop and
``Proxy-*`` headers stop here. For https:// and everything else clients send ``CONNECT
host:port``: we answer 200 and splice the bytes.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import h11

from innerloop.clusternet.dial import Dialer, DialError, DialFailure
from innerloop.tunnel.splice import splice

log = logging.getLogger(__name__)
READ_SIZE = 64 * 1024
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"te", b"trailer", b"upgrade"})
STATUS = {DialError.TIMEOUT: 504}
"""The answer to a failed dial; any other failure is 502."""


class _Peer:
    """One end of a forwarded exchange: an h11 connection over a stream pair."""

    def __init__(self, role: type[h11.CLIENT | h11.SERVER],
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 key: tuple[str, int] = ("", 0)) -> None:
        self.conn = h11.Connection(role)
        self.reader = reader
        self.writer = writer
        self.key = key

    async def next_event(self) -> h11.Event:
        """The next event; never PAUSED, as we do not read past a message before its answer."""
        while not isinstance(event := self.conn.next_event(), h11.Event):
            if event is h11.PAUSED:
                raise h11.LocalProtocolError("read past the end of a message")
            self.conn.receive_data(await self.reader.read(READ_SIZE))
        return event

    async def send(self, event: h11.Event) -> None:
        self.writer.write(self.conn.send(event) or b"")
        await self.writer.drain()

    def reusable(self) -> bool:
        return self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE

    def close(self) -> None:
        self.writer.close()


async def serve_http(first: bytes, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter, dialer: Dialer) -> None:
    """Serve one client connection whose first bytes (``first``) are HTTP."""
    client = _Peer(h11.SERVER, reader, writer)
    client.conn.receive_data(first)
    upstream: _Peer | None = None
    try:
        while isinstance(request := await client.next_event(), h11.Request):
            if request.method == b"CONNECT":
                await _tunnel(client, request, dialer)
                return
            upstream = await _forward(client, request, upstream, dialer)
            if not client.reusable():
                return
            client.conn.start_next_cycle()
    except h11.RemoteProtocolError as exc:
        await _fail(client, exc.error_status_hint, f"bad request: {exc}")
    finally:
        if upstream is not None:
            upstream.close()


async def _tunnel(client: _Peer, request: h11.Request, dialer: Dialer) -> None:
    where = _host_port(request.target)
    if where is None:
        await _fail(client, 400, f"CONNECT wants host:port, not {request.target!r}")
        return
    dialed = await dialer.dial(*where)
    if isinstance(dialed, DialFailure):
        await _fail(client, STATUS.get(dialed.error, 502), dialed.message)
        return
    up_reader, up_writer = dialed
    await client.send(h11.Response(status_code=200, headers=[], reason=b"Connection established"))
    early, _ = client.conn.trailing_data
    up_writer.write(early)
    await splice(client.reader, client.writer, up_reader, up_writer)


async def _forward(client: _Peer, request: h11.Request, upstream: _Peer | None,
                   dialer: Dialer) -> _Peer | None:
    """One request and its response; returns the upstream if it may serve the next one."""
    target = _origin_form(request.target)
    if isinstance(target, str):
        await _fail(client, 400, target)
        return upstream
    host, port, authority, path = target
    if upstream is not None and (upstream.key != (host, port) or not _idle(upstream)):
        upstream.close()
        upstream = None
    if upstream is None:
        dialed = await dialer.dial(host, port)
        if isinstance(dialed, DialFailure):
            await _fail(client, STATUS.get(dialed.error, 502), dialed.message)
            return None
        upstream = _Peer(h11.CLIENT, *dialed, key=(host, port))
    headers = [(b"Host", authority), *_end_to_end(request, drop=b"host")]
    try:
        await upstream.send(h11.Request(method=request.method, target=path, headers=headers))
        await _both_ways(client, upstream)
    except (OSError, h11.ProtocolError) as exc:
        upstream.close()
        await _fail(client, 502, f"{host}:{port}: {exc or type(exc).__name__}")
        return None
    if upstream.reusable():
        upstream.conn.start_next_cycle()
        return upstream
    upstream.close()
    return None


def _idle(upstream: _Peer) -> bool:
    """Still open: an upstream that closed while idle would fail the next request."""
    return not upstream.reader.at_eof() and not upstream.writer.is_closing()


async def _both_ways(client: _Peer, upstream: _Peer) -> None:
    """Body up and response down at once: a server may answer while the body still flows."""
    tasks = [asyncio.ensure_future(_copy_body(client, upstream)),
             asyncio.ensure_future(_copy_response(upstream, client))]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
    for task in done:
        task.result()


async def _copy_body(src: _Peer, dst: _Peer) -> None:
    """The request body, chunk by chunk (trailers are dropped)."""
    while isinstance(event := await src.next_event(), h11.Data):
        await dst.send(h11.Data(data=event.data))
    await dst.send(h11.EndOfMessage())  # h11 ends a body with EndOfMessage, or raises


async def _copy_response(upstream: _Peer, client: _Peer) -> None:
    while not isinstance(event := await upstream.next_event(), h11.EndOfMessage):
        if isinstance(event, (h11.InformationalResponse, h11.Response)):
            await client.send(type(event)(status_code=event.status_code, reason=event.reason,
                                          headers=_end_to_end(event)))
        elif isinstance(event, h11.Data):
            await client.send(h11.Data(data=event.data))
        else:
            raise h11.RemoteProtocolError(f"upstream sent {event!r} before its response ended")
    await client.send(h11.EndOfMessage())


def _end_to_end(message: h11.Request | h11.Response | h11.InformationalResponse,
                drop: bytes = b"") -> list[tuple[bytes, bytes]]:
    """The headers meant for the other end: without hop-by-hop, ``Proxy-*`` and ``drop``."""
    named = {t.strip() for name, value in message.headers if name == b"connection"
             for t in value.lower().split(b",")}
    stop = HOP_BY_HOP | named | {drop}
    return [(name, value) for name, value in message.headers.raw_items()
            if (low := name.lower()) not in stop and not low.startswith(b"proxy-")]


def _host_port(authority: bytes) -> tuple[str, int] | None:
    url = urlsplit("//" + authority.decode("ascii", "replace"))
    try:
        port = url.port
    except ValueError:
        return None
    return (url.hostname, port) if url.hostname and port is not None else None


def _origin_form(target: bytes) -> tuple[str, int, bytes, bytes] | str:
    """(host, port, authority, origin-form target) of an absolute http:// URL, or why not."""
    url = urlsplit(target.decode("ascii", "replace"))
    try:
        port = url.port or 80
    except ValueError:
        return f"bad port in {target!r}"
    if url.scheme != "http" or not url.hostname:
        return f"this is a proxy: send absolute http:// URLs or CONNECT, not {target!r}"
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    return url.hostname, port, url.netloc.rpartition("@")[2].encode(), path.encode()


async def _fail(client: _Peer, status: int, message: str) -> None:
    """A one-line text answer that also ends the connection (if a response can still go)."""
    log.info("proxy answers %d: %s", status, message)
    if client.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    body = f"innerloop proxy: {message}\n".encode()
    try:
        await client.send(h11.Response(status_code=status, headers=[
            (b"Content-Type", b"text/plain; charset=utf-8"),
            (b"Content-Length", str(len(body)).encode()), (b"Connection", b"close")]))
        await client.send(h11.Data(data=body))
        await client.send(h11.EndOfMessage())
    except (OSError, h11.ProtocolError):
        log.debug("the client went away before the %d answer", status)
