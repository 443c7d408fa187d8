"""Outbound connections the client asks for (DIAL), made from the pod.

They leave with the pod's IP, NetworkPolicies and egress: that is the point of dialling here
rather than on the laptop. The agent reaches what the pod can reach and nothing more, except
that it refuses its own tunnel port on loopback (a tunnel inside the tunnel).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

DIAL_TIMEOUT = 10.0
_NO_SUCH_HOST = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


class CannotConnect(Exception):
    """The connection could not be made; the message is the one-line reason for the RESET."""


async def dial(host: str, port: int, *, tunnel_port: int,
               timeout: float = DIAL_TIMEOUT) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.wait_for(_connect(host, port, tunnel_port), timeout)
    except asyncio.TimeoutError:
        raise CannotConnect(f"timed out after {timeout:g} s") from None
    except socket.gaierror as exc:
        raise CannotConnect("no such host" if exc.errno in _NO_SUCH_HOST
                         else f"cannot resolve {host}: {exc.strerror}") from None
    except ConnectionRefusedError:
        raise CannotConnect("connection refused") from None
    except OSError as exc:
        raise CannotConnect(exc.strerror or str(exc)) from None


async def _connect(host: str, port: int,
                   tunnel_port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Resolve once, refuse a loop, then try each address in turn (as ``create_connection``)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in infos]
    if port == tunnel_port and any(map(_is_local, addresses)):
        raise CannotConnect(f"refused: {host}:{port} is the agent's own tunnel port")
    error = OSError(f"{host} has no address")
    for ip in addresses:
        try:
            return await asyncio.open_connection(ip, port)
        except OSError as exc:
            error = exc
    raise error


def _is_local(ip: str) -> bool:
    address = ipaddress.ip_address(ip.partition("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified
