"""The local proxy for clients that are not Python (curl, grpcio, Node, Go): one loopback port.

The first byte says what a client speaks: 0x05 is SOCKS5 (``--proxy socks5h://``), anything
else HTTP/1.1 (``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``/``grpc_proxy``: CONNECT or
absolute-form). Every
name goes through the same ``resolve(host, port)`` as the resolver hook: a cluster Service's
forwarder on loopback, a direct connection for names that are not the cluster's, or "no such
host" for cluster-shaped names that are no Service.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from types import TracebackType

import h11

from innerloop.clusternet.control import Resolver
from innerloop.clusternet.dial import Connect, Dialer, DialError, DialFailure
from innerloop.clusternet.http_proxy import READ_SIZE, serve_http
from innerloop.core.errors import RemoteProtocolError
from innerloop.core.socks5 import (
    VERSION,
    SocksConnect,
    SocksHandshake,
    SocksRefuse,
    SocksReply,
    SocksSend,
)
from innerloop.tunnel.sockets import tune
from innerloop.tunnel.splice import splice

log = logging.getLogger(__name__)
LOOPBACK = "127.0.0.1"
NO_PROXY = "localhost,127.0.0.1,::1"
CONNECT_TIMEOUT = 10.0
SOCKS_REPLY = {
    DialError.NO_NAME: SocksReply.HOST_UNREACHABLE,
    DialError.UNREACHABLE: SocksReply.HOST_UNREACHABLE,
    DialError.TIMEOUT: SocksReply.HOST_UNREACHABLE,
    DialError.REFUSED: SocksReply.CONNECTION_REFUSED,
    DialError.FAILED: SocksReply.GENERAL_FAILURE,
}


def proxy_env(port: int) -> dict[str, str]:
    """The variables that send a launched process's non-Python clients through the proxy.

    ALL_PROXY is the HTTP proxy too, not socks5h://: a client that reads it may speak SOCKS
    only with an optional extra (httpx without socksio raises ImportError at `httpx.Client()`),
    and over HTTP the name still reaches the proxy (CONNECT or absolute-form)."""
    http = f"http://{LOOPBACK}:{port}"
    env = {"HTTP_PROXY": http, "HTTPS_PROXY": http, "ALL_PROXY": http, "NO_PROXY": NO_PROXY}
    return {**env, **{name.lower(): value for name, value in env.items()}, "grpc_proxy": http}


class ProxyServer:
    """SOCKS5 and HTTP proxy on ``127.0.0.1:port`` (ephemeral by default) until closed.

    ``connect_direct(host, port)`` dials names that are not the cluster's (default: as any
    local program would).
    """

    def __init__(self, resolve: Resolver, *, connect_direct: Connect = asyncio.open_connection,
                 port: int = 0, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self._dialer = Dialer(resolve, connect_direct, connect_timeout)
        self._wanted_port = port
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, LOOPBACK, self._wanted_port)
        log.debug("proxy listening on %s:%d", LOOPBACK, self.port)

    async def close(self) -> None:
        """Stop listening and end every connection still open."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> ProxyServer:  # noqa: PYI034 (Self needs Python 3.11)
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        conn_id = next(self._ids)
        tune(writer)
        try:
            first = await reader.read(READ_SIZE)
            if first[:1] == bytes([VERSION]):
                await self._serve_socks(conn_id, first, reader, writer)
            elif first:
                await serve_http(first, reader, writer, self._dialer)
        except (OSError, RemoteProtocolError, h11.ProtocolError) as exc:
            log.debug("proxy connection %d ended: %s", conn_id, exc)
        except asyncio.CancelledError:
            pass  # close() ends the handler; Python 3.11's start_server logs a cancelled one
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _serve_socks(self, conn_id: int, data: bytes, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        handshake = SocksHandshake()
        while data:
            for effect in handshake.receive(data):
                if isinstance(effect, SocksSend):
                    writer.write(effect.data)
                elif isinstance(effect, SocksRefuse):
                    log.info("proxy connection %d: SOCKS5 refused: %s", conn_id, effect.reason)
                    writer.write(effect.data)
                    await writer.drain()
                    return
                else:
                    await self._socks_connect(conn_id, handshake, effect, reader, writer)
                    return
            await writer.drain()
            data = await reader.read(READ_SIZE)

    async def _socks_connect(self, conn_id: int, handshake: SocksHandshake, ask: SocksConnect,
                             reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dialed = await self._dialer.dial(ask.host, ask.port)
        if isinstance(dialed, DialFailure):
            log.info("proxy connection %d: %s", conn_id, dialed.message)
            writer.write(handshake.reply(SOCKS_REPLY[dialed.error]))
            await writer.drain()
            return
        up_reader, up_writer = dialed
        bound = up_writer.get_extra_info("sockname")
        writer.write(handshake.reply(SocksReply.SUCCEEDED, bound[0], bound[1]))
        up_writer.write(handshake.trailing)
        await splice(reader, writer, up_reader, up_writer)
