"""Tunnel frames: the wire format of docs/protocol.md, one class per frame, and the encoder.

Every frame is a 9-byte header (payload length u32, type u8, stream id u32, big-endian) and a
payload laid out field by field (`FrameSpec`); `core.frame_decoder` reads them back.
"""

from __future__ import annotations

import enum
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from innerloop.core.errors import LocalProtocolError, UserError
from innerloop.core.filters import (
    EVERYTHING,
    AppProtocol,
    Mode,
    RequestFilter,
    encode_filter,
    filter_from_json,
    filter_to_json,
    parse_filter,
)
from innerloop.core.request import WhilePaused
from innerloop.core.value import Value

VERSION = 3
HEADER = struct.Struct("!IBI")
MAX_PAYLOAD = 64 * 1024
DATA_CODE = 0x22  # senders may write HEADER.pack(size, DATA_CODE, id) + payload themselves
STR_LEN = struct.Struct("!H")
INTS = {kind: struct.Struct("!" + kind) for kind in "BHIQ"}

WHILE_PAUSED_CODES = {WhilePaused.CLUSTER: 0, WhilePaused.HOLD: 1}
"""PAUSE's wire byte: the only place WhilePaused becomes a number."""
MODE_CODES = {Mode.ROUTE: 0, Mode.MIRROR: 1}
PROTOCOL_CODES = {AppProtocol.AUTO: 0, AppProtocol.HTTP1: 1, AppProtocol.H2: 2,
                  AppProtocol.TCP: 3}
"""CLAIM's wire bytes: the only places Mode and AppProtocol become numbers."""
_CODES: dict[type[enum.Enum], dict[Any, int]] = {
    WhilePaused: WHILE_PAUSED_CODES, Mode: MODE_CODES, AppProtocol: PROTOCOL_CODES}
_E = TypeVar("_E", bound=enum.Enum)


def _member(kind: type[_E], code: int) -> _E:
    for member, value in _CODES[kind].items():
        if value == code:
            return member  # type: ignore[no-any-return]
    raise ValueError(f"{code} is not a valid {kind.__name__} code")


class Status(enum.IntEnum):
    """Outcome of a client request (CLAIM, RELEASE, PAUSE, RESUME)."""

    OK = 0
    CONFLICT = 1  # another client holds the route; Reply.holder names it
    REJECTED = 2  # the request makes no sense here; Reply.reason says why


class Hello(Value):
    """Client → agent, first frame: protocol version, who we are, our per-stream window."""

    __slots__ = _fields = ("version", "client_id", "window")

    def __init__(self, version: int, client_id: str, window: int) -> None:
        self.version, self.client_id, self.window = version, client_id, window


class Welcome(Value):
    """Agent → client: handshake accepted."""

    __slots__ = _fields = ("version", "agent_name", "window")

    def __init__(self, version: int, agent_name: str, window: int) -> None:
        self.version, self.agent_name, self.window = version, agent_name, window


class Goodbye(Value):
    """Either side: the tunnel ends now, and why (also refuses a handshake)."""

    __slots__ = _fields = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class Ping(Value):
    __slots__ = _fields = ("token",)

    def __init__(self, token: int) -> None:
        self.token = token


class Pong(Value):
    __slots__ = _fields = ("token",)

    def __init__(self, token: int) -> None:
        self.token = token


class Claim(Value):
    """Client → agent: send the requests on ``route_port`` that ``filter`` matches to me (or,
    in mirror mode, a copy of them); ``protocol`` says how to read them (docs/routing.md)."""

    __slots__ = _fields = ("request_id", "route_port", "local", "mode", "protocol", "filter")

    def __init__(self, request_id: int, route_port: int, local: str, mode: Mode = Mode.ROUTE,
                 protocol: AppProtocol = AppProtocol.AUTO,
                 filter: RequestFilter = EVERYTHING) -> None:
        self.request_id, self.route_port, self.local = request_id, route_port, local
        self.mode, self.protocol, self.filter = mode, protocol, filter


class ListClaims(Value):
    """Client → agent: which claims does every port have? Answered by CLAIM_LIST."""

    __slots__ = _fields = ("request_id",)

    def __init__(self, request_id: int) -> None:
        self.request_id = request_id


@dataclass(frozen=True)
class ClaimEntry:
    """One claim as LIST reports it (a dataclass: ``dataclasses.replace`` sets its counters)."""

    route_port: int
    client_id: str
    mode: Mode
    filter: RequestFilter
    protocol: AppProtocol
    paused: WhilePaused | None
    """The owner's whilePaused while its debuggee is stopped; None while it runs."""
    # a mirror claim's copies sent whole and dropped (paused, slow, gone); None: not counted.
    # Counters, not part of what the claim is: equality ignores them.
    copied: int | None = field(default=None, compare=False)
    dropped: int | None = field(default=None, compare=False)


class ClaimList(Value):
    """Agent → client: the answer to LIST_CLAIMS with the same id."""

    __slots__ = _fields = ("request_id", "entries")

    def __init__(self, request_id: int, entries: tuple[ClaimEntry, ...]) -> None:
        self.request_id, self.entries = request_id, entries


class Release(Value):
    __slots__ = _fields = ("request_id", "route_port")

    def __init__(self, request_id: int, route_port: int) -> None:
        self.request_id, self.route_port = request_id, route_port


class Pause(Value):
    __slots__ = _fields = ("request_id", "while_paused")

    def __init__(self, request_id: int, while_paused: WhilePaused) -> None:
        self.request_id, self.while_paused = request_id, while_paused


class Resume(Value):
    __slots__ = _fields = ("request_id",)

    def __init__(self, request_id: int) -> None:
        self.request_id = request_id


class Reply(Value):
    """Agent → client: the outcome of the request with the same id."""

    __slots__ = _fields = ("request_id", "status", "holder", "reason")

    def __init__(self, request_id: int, status: Status, holder: str, reason: str) -> None:
        self.request_id, self.status, self.holder, self.reason = request_id, status, holder, reason


class Open(Value):
    """Agent → client: a caller connected to a claimed route; ACCEPT or RESET it."""

    __slots__ = _fields = ("stream_id", "route_port", "peer")

    def __init__(self, stream_id: int, route_port: int, peer: str) -> None:
        self.stream_id, self.route_port, self.peer = stream_id, route_port, peer


class Accept(Value):
    __slots__ = _fields = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class Data(Value):
    __slots__ = _fields = ("stream_id", "data")

    def __init__(self, stream_id: int, data: bytes) -> None:
        self.stream_id, self.data = stream_id, data


class Window(Value):
    """Credit: the receiver consumed ``increment`` more bytes of the stream."""

    __slots__ = _fields = ("stream_id", "increment")

    def __init__(self, stream_id: int, increment: int) -> None:
        self.stream_id, self.increment = stream_id, increment


class Fin(Value):
    """Half-close: the sender will send no more data on this stream."""

    __slots__ = _fields = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class Reset(Value):
    __slots__ = _fields = ("stream_id", "reason")

    def __init__(self, stream_id: int, reason: str) -> None:
        self.stream_id, self.reason = stream_id, reason


class Dial(Value):
    """Client → agent: connect to ``host:port`` from the pod; ACCEPT once connected, or RESET."""

    __slots__ = _fields = ("stream_id", "host", "port")

    def __init__(self, stream_id: int, host: str, port: int) -> None:
        self.stream_id, self.host, self.port = stream_id, host, port


Frame = (Hello | Welcome | Goodbye | Ping | Pong | Claim | Release | Pause | Resume | Reply
         | ListClaims | ClaimList | Open | Accept | Data | Window | Fin | Reset | Dial)


def encode_entries(entries: tuple[ClaimEntry, ...]) -> str:
    """CLAIM_LIST's payload: a JSON array, one object per claim (a mirror's with its counters)."""
    return json.dumps([{"port": e.route_port, "client": e.client_id, "mode": e.mode.value,
                        "filter": filter_to_json(e.filter), "protocol": e.protocol.value,
                        "paused": None if e.paused is None else e.paused.value,
                        **({} if e.copied is None else {"copied": e.copied}),
                        **({} if e.dropped is None else {"dropped": e.dropped})}
                       for e in entries], sort_keys=True, separators=(",", ":"))


def _count(value: object) -> int | None:
    if value is None or (type(value) is int and value >= 0):
        return value
    raise TypeError(f"bad counter {value!r}")


def parse_entries(text: str) -> tuple[ClaimEntry, ...]:
    try:
        items = json.loads(text)
        if not isinstance(items, list):
            raise TypeError("not an array")
        return tuple(ClaimEntry(
            int(e["port"]), str(e["client"]), Mode.parse(e["mode"]),
            filter_from_json(e["filter"]), AppProtocol.parse(e["protocol"]),
            None if e["paused"] is None else WhilePaused.parse(e["paused"]),
            _count(e.get("copied")), _count(e.get("dropped")))
            for e in items)
    except (ValueError, TypeError, KeyError, UserError) as exc:
        raise ValueError(f"bad claim list: {exc}") from None


class FrameSpec:
    """How one frame type is laid out on the wire."""

    __slots__ = ("code", "dump", "layout", "make", "name", "on_stream")

    def __init__(self, code: int, make: Callable[..., Frame], layout: str, on_stream: bool,
                 dump: Callable[[Any], list[object]] | None = None) -> None:
        self.code, self.make, self.on_stream = code, make, on_stream
        self.layout = layout  # one letter per payload field: B H I Q ints, s string, b bytes
        self.dump = dump  # the payload values of a frame whose fields are not the wire's
        self.name = ""  # as docs/protocol.md names it: CLAIM_LIST


def _make_claim(rid: int, port: int, local: str, mode: int, protocol: int, flt: str) -> Claim:
    try:
        parsed = parse_filter(flt)
    except UserError as exc:
        raise ValueError(str(exc)) from None
    return Claim(rid, port, local, _member(Mode, mode), _member(AppProtocol, protocol), parsed)


def _dump_claim(f: Claim) -> list[object]:
    return [f.request_id, f.route_port, f.local, MODE_CODES[f.mode], PROTOCOL_CODES[f.protocol],
            encode_filter(f.filter)]


_SPECS: dict[type, FrameSpec] = {
    Hello: FrameSpec(0x01, Hello, "HsI", False),
    Welcome: FrameSpec(0x02, Welcome, "HsI", False),
    Goodbye: FrameSpec(0x03, Goodbye, "s", False),
    Ping: FrameSpec(0x04, Ping, "Q", False),
    Pong: FrameSpec(0x05, Pong, "Q", False),
    Claim: FrameSpec(0x10, _make_claim, "IHsBBs", False, _dump_claim),
    Release: FrameSpec(0x11, Release, "IH", False),
    Pause: FrameSpec(0x12, lambda rid, p: Pause(rid, _member(WhilePaused, p)), "IB", False,
                     lambda f: [f.request_id, WHILE_PAUSED_CODES[f.while_paused]]),
    Resume: FrameSpec(0x13, Resume, "I", False),
    Reply: FrameSpec(0x14, lambda rid, st, h, r: Reply(rid, Status(st), h, r), "IBss", False),
    ListClaims: FrameSpec(0x15, ListClaims, "I", False),
    ClaimList: FrameSpec(0x16, lambda rid, text: ClaimList(rid, parse_entries(text)), "Is",
                         False, lambda f: [f.request_id, encode_entries(f.entries)]),
    Open: FrameSpec(0x20, Open, "Hs", True),
    Accept: FrameSpec(0x21, Accept, "", True),
    Data: FrameSpec(DATA_CODE, Data, "b", True),
    Window: FrameSpec(0x23, Window, "I", True),
    Fin: FrameSpec(0x24, Fin, "", True),
    Reset: FrameSpec(0x25, Reset, "s", True),
    Dial: FrameSpec(0x26, Dial, "sH", True),
}
for _cls, _spec in _SPECS.items():
    _spec.name = "".join("_" + c if c.isupper() and i else c
                         for i, c in enumerate(_cls.__name__)).upper()
SPECS_BY_CODE = {spec.code: spec for spec in _SPECS.values()}


def encode(frame: Frame) -> bytes:
    """Serialize one frame; values that do not fit the wire format raise LocalProtocolError."""
    spec = _SPECS[type(frame)]
    values: list[Any] = (spec.dump(frame) if spec.dump is not None
                         else list(frame.field_values()))
    stream_id = values.pop(0) if spec.on_stream else 0
    if spec.on_stream and stream_id == 0:
        raise LocalProtocolError(f"{type(frame).__name__} needs a stream id > 0")
    parts: list[bytes] = []
    try:
        for kind, value in zip(spec.layout, values):
            if kind == "s":
                raw = value.encode("utf-8")
                parts += [STR_LEN.pack(len(raw)), raw]
            elif kind == "b":
                parts.append(bytes(value))
            else:
                parts.append(INTS[kind].pack(value))
        payload = b"".join(parts)
        if len(payload) > MAX_PAYLOAD:
            raise LocalProtocolError(f"{type(frame).__name__} payload of {len(payload)} bytes "
                                     f"exceeds {MAX_PAYLOAD}")
        return HEADER.pack(len(payload), spec.code, stream_id) + payload
    except struct.error as exc:
        raise LocalProtocolError(f"{type(frame).__name__}: {exc}") from None
