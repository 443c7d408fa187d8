"""From a name the local process asked for to a connected socket: resolve, then connect.

Shared by every way into the proxy (SOCKS5, HTTP CONNECT, absolute-form HTTP), so they all
answer a cluster name, an outside name and a missing name the same way. ``resolve`` is the
control socket's (``innerloop.clusternet.control.Resolver``): one function answers both the
resolver hook and the proxy.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias

from innerloop.clusternet.control import Resolver
from innerloop.core.cluster_names import LocalAddress, NotFound
from innerloop.tunnel.sockets import tune

log = logging.getLogger(__name__)

Streams: TypeAlias = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Connect: TypeAlias = Callable[[str, int], Awaitable[Streams]]


class DialError(enum.Enum):
    NO_NAME = "no such host"
    UNREACHABLE = "unreachable"
    REFUSED = "connection refused"
    TIMEOUT = "timed out"
    FAILED = "failed"


@dataclass(frozen=True)
class DialFailure:
    error: DialError
    message: str
    """One line for the client: what was asked and what went wrong."""


class Dialer:
    """``dial(host, port)``: a connected pair (TCP_NODELAY set) or why there is none."""

    def __init__(self, resolve: Resolver, connect_direct: Connect, timeout: float) -> None:
        self._resolve = resolve
        self._connect_direct = connect_direct
        self._timeout = timeout

    async def dial(self, host: str, port: int) -> Streams | DialFailure:
        where = f"{host}:{port}"
        try:
            answer = self._resolve(host, port)
            target = await answer if isinstance(answer, Awaitable) else answer
        except Exception as exc:  # a broken resolver must not take the proxy down
            log.exception("resolving %s failed", where)
            return DialFailure(DialError.FAILED, f"{where}: resolving failed ({exc})")
        if isinstance(target, NotFound):
            why = f" ({target.reason})" if target.reason else ""
            return DialFailure(DialError.NO_NAME, f"{host}: no such host in the cluster{why}")
        connect: Awaitable[Streams]
        if isinstance(target, LocalAddress):
            connect = asyncio.open_connection(target.host, target.port)
            where = f"{where} (forwarder {target.host}:{target.port})"
        else:
            connect = self._connect_direct(host, port)
        try:
            reader, writer = await asyncio.wait_for(connect, self._timeout)
        except asyncio.TimeoutError:
            return DialFailure(DialError.TIMEOUT, f"{where}: no connection in {self._timeout:g} s")
        except socket.gaierror as exc:
            return DialFailure(DialError.UNREACHABLE, f"{where}: cannot resolve ({exc.strerror})")
        except ConnectionRefusedError:
            return DialFailure(DialError.REFUSED, f"{where}: connection refused")
        except (OSError, ValueError) as exc:
            return DialFailure(DialError.FAILED, f"{where}: {exc}")
        tune(writer)
        log.debug("dialled %s", where)
        return reader, writer
