"""SOCKS5 (RFC 1928), the server side, sans-I/O: bytes in, effects and bytes out.

We accept what a local proxy for the launched process needs and nothing more: no
authentication (method 0x00) and CONNECT, to an IPv4, IPv6 or domain address. Everything else
gets the RFC's refusal, and bytes that are no SOCKS5 at all raise ``RemoteProtocolError``.
The shell feeds what it reads to ``SocksHandshake.receive`` and acts on the effects; once it
has dialled the target it sends ``reply(...)`` and, on success, splices the two sockets,
writing ``trailing`` (bytes the client sent early) first.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from dataclasses import dataclass

from innerloop.core.errors import LocalProtocolError, RemoteProtocolError

VERSION = 5
NO_AUTH = 0x00
NO_ACCEPTABLE_METHOD = 0xFF
CMD_CONNECT = 0x01
_PORT = struct.Struct("!H")


class SocksAddressType(enum.IntEnum):
    IPV4 = 0x01
    DOMAIN = 0x03
    IPV6 = 0x04


_ADDRESS_TYPES = frozenset(SocksAddressType)


class SocksReply(enum.IntEnum):
    """The REP field of a reply (RFC 1928 §6)."""

    SUCCEEDED = 0x00
    GENERAL_FAILURE = 0x01
    NOT_ALLOWED = 0x02
    NETWORK_UNREACHABLE = 0x03
    HOST_UNREACHABLE = 0x04
    CONNECTION_REFUSED = 0x05
    TTL_EXPIRED = 0x06
    COMMAND_NOT_SUPPORTED = 0x07
    ADDRESS_TYPE_NOT_SUPPORTED = 0x08


@dataclass(frozen=True, slots=True)
class SocksSend:
    """Write these bytes to the client and go on reading."""

    data: bytes


@dataclass(frozen=True, slots=True)
class SocksRefuse:
    """Write these bytes to the client, then close: the request cannot be served."""

    data: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class SocksConnect:
    """The client asks for a connection to host:port; answer with ``SocksHandshake.reply``."""

    host: str
    port: int
    address_type: SocksAddressType


SocksEffect = SocksSend | SocksRefuse | SocksConnect


class _Phase(enum.Enum):
    GREETING = "greeting"
    REQUEST = "request"
    CONNECTING = "connecting"  # waiting for the shell's reply; early client bytes are kept
    ESTABLISHED = "established"
    CLOSED = "closed"


def reply_bytes(code: SocksReply, host: str = "0.0.0.0", port: int = 0) -> bytes:
    """A reply with the bound address ``host:port`` (an IP literal or a domain name)."""
    return bytes([VERSION, code, 0]) + _encode_address(host) + _PORT.pack(port)


def _encode_address(host: str) -> bytes:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        name = host.encode()
        if len(name) > 255 or not _is_host_name(name):
            raise LocalProtocolError(f"bound address {host!r} does not fit a SOCKS5 reply")
        return bytes([SocksAddressType.DOMAIN, len(name)]) + name
    kind = SocksAddressType.IPV4 if ip.version == 4 else SocksAddressType.IPV6
    return bytes([kind]) + ip.packed


class SocksHandshake:
    """One client connection's negotiation, from the greeting to the CONNECT reply."""

    def __init__(self) -> None:
        self._phase = _Phase.GREETING
        self._buffer = bytearray()

    @property
    def trailing(self) -> bytes:
        """Bytes the client sent after its request, to be forwarded first (once established)."""
        if self._phase is not _Phase.ESTABLISHED:
            raise LocalProtocolError(f"no trailing bytes while {self._phase.value}")
        return bytes(self._buffer)

    def receive(self, data: bytes) -> list[SocksEffect]:
        if self._phase in (_Phase.ESTABLISHED, _Phase.CLOSED):
            raise LocalProtocolError(f"SOCKS5 bytes received while {self._phase.value}")
        self._buffer += data
        effects: list[SocksEffect] = []
        while self._phase in (_Phase.GREETING, _Phase.REQUEST):
            effect = self._greeting() if self._phase is _Phase.GREETING else self._request()
            if effect is None:
                break
            effects.append(effect)
        return effects

    def reply(self, code: SocksReply, host: str = "0.0.0.0", port: int = 0) -> bytes:
        """The answer to ``SocksConnect``: success with the bound address, or a failure."""
        if self._phase is not _Phase.CONNECTING:
            raise LocalProtocolError(f"SOCKS5 reply while {self._phase.value}")
        ok = code is SocksReply.SUCCEEDED
        self._phase = _Phase.ESTABLISHED if ok else _Phase.CLOSED
        return reply_bytes(code, host, port)

    def _greeting(self) -> SocksEffect | None:
        buf = self._buffer
        if buf and buf[0] != VERSION:
            raise RemoteProtocolError(f"not SOCKS5: version byte {buf[0]:#04x}")
        if len(buf) < 2 or len(buf) < 2 + buf[1]:
            return None
        methods = bytes(buf[2:2 + buf[1]])
        del buf[:2 + len(methods)]
        if NO_AUTH not in methods:
            return self._refuse(bytes([VERSION, NO_ACCEPTABLE_METHOD]),
                                f"no acceptable authentication method in {methods.hex()}")
        self._phase = _Phase.REQUEST
        return SocksSend(bytes([VERSION, NO_AUTH]))

    def _request(self) -> SocksEffect | None:
        buf = self._buffer
        if buf and buf[0] != VERSION:
            raise RemoteProtocolError(f"SOCKS5 request with version byte {buf[0]:#04x}")
        if len(buf) < 4:
            return None
        command, atyp = buf[1], buf[3]
        if atyp not in _ADDRESS_TYPES:
            return self._refuse(reply_bytes(SocksReply.ADDRESS_TYPE_NOT_SUPPORTED),
                                f"address type {atyp:#04x} is not supported")
        parsed = _address(buf, SocksAddressType(atyp))
        if parsed is None:
            return None
        host, end = parsed
        port = _PORT.unpack_from(buf, end)[0]
        del buf[:end + _PORT.size]
        if command != CMD_CONNECT:
            return self._refuse(reply_bytes(SocksReply.COMMAND_NOT_SUPPORTED),
                                f"command {command:#04x} is not supported (CONNECT only)")
        self._phase = _Phase.CONNECTING
        return SocksConnect(host, port, SocksAddressType(atyp))

    def _refuse(self, data: bytes, reason: str) -> SocksRefuse:
        self._phase = _Phase.CLOSED
        return SocksRefuse(data, reason)


def _address(buf: bytearray, atyp: SocksAddressType) -> tuple[str, int] | None:
    """The host at offset 4 and the offset of the port after it, or None if incomplete."""
    if atyp is SocksAddressType.DOMAIN:
        if len(buf) < 5:
            return None
        start, end = 5, 5 + buf[4]
    else:
        start = 4
        end = start + (4 if atyp is SocksAddressType.IPV4 else 16)
    if len(buf) < end + _PORT.size:
        return None
    raw = bytes(buf[start:end])
    if atyp is not SocksAddressType.DOMAIN:
        return str(ipaddress.ip_address(raw)), end
    if not _is_host_name(raw):
        raise RemoteProtocolError(f"SOCKS5 domain name {raw!r} is not a host name")
    return raw.decode("ascii"), end


def _is_host_name(name: bytes) -> bool:
    """Printable ASCII without spaces: what a resolver can be asked about."""
    return bool(name) and all(0x21 <= b <= 0x7E for b in name)
