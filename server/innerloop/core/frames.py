"""Tunnel frames: the wire format of docs/protocol.md and a decoder that trusts nothing.

Every frame is a 9-byte header (payload length u32, type u8, stream id u32, big-endian) and a
payload laid out field by field. The decoder checks the length against the maximum before it
buffers anything, so a hostile or confused peer costs at most one frame of memory and every
malformation ends in ``RemoteProtocolError``.
"""

from __future__ import annotations

import enum
import json
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from innerloop.core.errors import LocalProtocolError, RemoteProtocolError, UserError
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

VERSION = 3
HEADER = struct.Struct("!IBI")
MAX_PAYLOAD = 64 * 1024
DATA_CODE = 0x22  # senders may write HEADER.pack(size, DATA_CODE, id) + payload themselves
_STR_LEN = struct.Struct("!H")
_INTS = {kind: struct.Struct("!" + kind) for kind in "BHIQ"}

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


@dataclass(frozen=True, slots=True)
class Hello:
    """Client → agent, first frame: protocol version, who we are, our per-stream window."""

    version: int
    client_id: str
    window: int


@dataclass(frozen=True, slots=True)
class Welcome:
    """Agent → client: handshake accepted."""

    version: int
    agent_name: str
    window: int


@dataclass(frozen=True, slots=True)
class Goodbye:
    """Either side: the tunnel ends now, and why (also refuses a handshake)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Ping:
    token: int


@dataclass(frozen=True, slots=True)
class Pong:
    token: int


@dataclass(frozen=True, slots=True)
class Claim:
    """Client → agent: send the requests on ``route_port`` that ``filter`` matches to me (or,
    in mirror mode, a copy of them); ``protocol`` says how to read them (docs/routing.md)."""

    request_id: int
    route_port: int
    local: str
    mode: Mode = Mode.ROUTE
    protocol: AppProtocol = AppProtocol.AUTO
    filter: RequestFilter = EVERYTHING


@dataclass(frozen=True, slots=True)
class ListClaims:
    """Client → agent: which claims does every port have? Answered by CLAIM_LIST."""

    request_id: int


@dataclass(frozen=True)
class ClaimEntry:
    """One claim as LIST reports it."""

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


@dataclass(frozen=True, slots=True)
class ClaimList:
    """Agent → client: the answer to LIST_CLAIMS with the same id."""

    request_id: int
    entries: tuple[ClaimEntry, ...]


@dataclass(frozen=True, slots=True)
class Release:
    request_id: int
    route_port: int


@dataclass(frozen=True, slots=True)
class Pause:
    request_id: int
    while_paused: WhilePaused


@dataclass(frozen=True, slots=True)
class Resume:
    request_id: int


@dataclass(frozen=True, slots=True)
class Reply:
    """Agent → client: the outcome of the request with the same id."""

    request_id: int
    status: Status
    holder: str
    reason: str


@dataclass(frozen=True, slots=True)
class Open:
    """Agent → client: a caller connected to a claimed route; ACCEPT or RESET it."""

    stream_id: int
    route_port: int
    peer: str


@dataclass(frozen=True, slots=True)
class Accept:
    stream_id: int


@dataclass(frozen=True, slots=True)
class Data:
    stream_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Window:
    """Credit: the receiver consumed ``increment`` more bytes of the stream."""

    stream_id: int
    increment: int


@dataclass(frozen=True, slots=True)
class Fin:
    """Half-close: the sender will send no more data on this stream."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class Reset:
    stream_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class Dial:
    """Client → agent: connect to ``host:port`` from the pod; ACCEPT once connected, or RESET."""

    stream_id: int
    host: str
    port: int


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


@dataclass(frozen=True)
class _Spec:
    code: int
    make: Callable[..., Frame]
    layout: str  # one letter per payload field: B H I Q ints, s string, b trailing bytes
    on_stream: bool  # stream frames carry their first field in the header
    dump: Callable[[Any], list[object]] | None = None
    """The payload values of a frame whose fields are not the wire's (the inverse of make)."""


def _make_claim(rid: int, port: int, local: str, mode: int, protocol: int, flt: str) -> Claim:
    try:
        parsed = parse_filter(flt)
    except UserError as exc:
        raise ValueError(str(exc)) from None
    return Claim(rid, port, local, _member(Mode, mode), _member(AppProtocol, protocol), parsed)


def _dump_claim(f: Claim) -> list[object]:
    return [f.request_id, f.route_port, f.local, MODE_CODES[f.mode], PROTOCOL_CODES[f.protocol],
            encode_filter(f.filter)]


_SPECS: dict[type, _Spec] = {
    Hello: _Spec(0x01, Hello, "HsI", False),
    Welcome: _Spec(0x02, Welcome, "HsI", False),
    Goodbye: _Spec(0x03, Goodbye, "s", False),
    Ping: _Spec(0x04, Ping, "Q", False),
    Pong: _Spec(0x05, Pong, "Q", False),
    Claim: _Spec(0x10, _make_claim, "IHsBBs", False, _dump_claim),
    Release: _Spec(0x11, Release, "IH", False),
    Pause: _Spec(0x12, lambda rid, p: Pause(rid, _member(WhilePaused, p)), "IB", False,
                 lambda f: [f.request_id, WHILE_PAUSED_CODES[f.while_paused]]),
    Resume: _Spec(0x13, Resume, "I", False),
    Reply: _Spec(0x14, lambda rid, st, h, r: Reply(rid, Status(st), h, r), "IBss", False),
    ListClaims: _Spec(0x15, ListClaims, "I", False),
    ClaimList: _Spec(0x16, lambda rid, text: ClaimList(rid, parse_entries(text)), "Is", False,
                     lambda f: [f.request_id, encode_entries(f.entries)]),
    Open: _Spec(0x20, Open, "Hs", True),
    Accept: _Spec(0x21, Accept, "", True),
    Data: _Spec(DATA_CODE, Data, "b", True),
    Window: _Spec(0x23, Window, "I", True),
    Fin: _Spec(0x24, Fin, "", True),
    Reset: _Spec(0x25, Reset, "s", True),
    Dial: _Spec(0x26, Dial, "sH", True),
}
_BY_CODE = {spec.code: spec for spec in _SPECS.values()}
_NAMES = {spec.code: re.sub(r"(?<=.)([A-Z])", r"_\1", cls.__name__).upper()
          for cls, spec in _SPECS.items()}  # ClaimList → CLAIM_LIST, as docs/protocol.md


def encode(frame: Frame) -> bytes:
    """Serialize one frame; values that do not fit the wire format raise LocalProtocolError."""
    spec = _SPECS[type(frame)]
    values: list[Any] = (spec.dump(frame) if spec.dump is not None
              else [getattr(frame, f.name) for f in fields(frame)])
    stream_id = values.pop(0) if spec.on_stream else 0
    if spec.on_stream and stream_id == 0:
        raise LocalProtocolError(f"{type(frame).__name__} needs a stream id > 0")
    parts: list[bytes] = []
    try:
        for kind, value in zip(spec.layout, values):
            if kind == "s":
                raw = value.encode("utf-8")
                parts += [_STR_LEN.pack(len(raw)), raw]
            elif kind == "b":
                parts.append(bytes(value))
            else:
                parts.append(_INTS[kind].pack(value))
        payload = b"".join(parts)
        if len(payload) > MAX_PAYLOAD:
            raise LocalProtocolError(f"{type(frame).__name__} payload of {len(payload)} bytes "
                                     f"exceeds {MAX_PAYLOAD}")
        return HEADER.pack(len(payload), spec.code, stream_id) + payload
    except struct.error as exc:
        raise LocalProtocolError(f"{type(frame).__name__}: {exc}") from None


def _decode_payload(spec: _Spec, stream_id: int, payload: bytes) -> Frame:
    name = _NAMES[spec.code]
    values: list[object] = [stream_id] if spec.on_stream else []
    pos = 0
    for kind in spec.layout:
        if kind == "b":
            values.append(payload[pos:] if pos else payload)
            pos = len(payload)
        elif kind == "s":
            if pos + 2 > len(payload):
                raise RemoteProtocolError(f"{name} frame truncated")
            (size,) = _STR_LEN.unpack_from(payload, pos)
            raw = payload[pos + 2:pos + 2 + size]
            if len(raw) != size:
                raise RemoteProtocolError(f"{name} frame truncated")
            try:
                values.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise RemoteProtocolError(f"{name} frame has a string that is not UTF-8") from None
            pos += 2 + size
        else:
            codec = _INTS[kind]
            if pos + codec.size > len(payload):
                raise RemoteProtocolError(f"{name} frame truncated")
            values.append(codec.unpack_from(payload, pos)[0])
            pos += codec.size
    if pos != len(payload):
        raise RemoteProtocolError(f"{name} frame has {len(payload) - pos} trailing bytes")
    try:
        return spec.make(*values)
    except ValueError as exc:  # an enum field out of range
        raise RemoteProtocolError(f"{name} frame: {exc}") from None


class FrameDecoder:
    """Turns a byte stream into frames, however the stream is chunked.

    ``next_frame`` hands out one frame at a time, so frames before a malformed one are not lost
    with it.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self._max_payload = max_payload
        self._buffer = bytearray()
        self._pos = 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer += data

    def next_frame(self) -> Frame | None:
        """The next complete frame, or None until more bytes arrive."""
        available = len(self._buffer) - self._pos
        if available < HEADER.size:
            self._compact()
            return None
        length, code, stream_id = HEADER.unpack_from(self._buffer, self._pos)
        spec = _BY_CODE.get(code)
        if spec is None:
            raise RemoteProtocolError(f"unknown frame type 0x{code:02x}")
        if length > self._max_payload:
            raise RemoteProtocolError(f"{_NAMES[code]} frame of {length} bytes exceeds "
                                      f"the maximum of {self._max_payload}")
        if spec.on_stream != (stream_id != 0):
            where = "needs a stream id" if spec.on_stream else "must use stream 0"
            raise RemoteProtocolError(f"{_NAMES[code]} frame {where}")
        if available < HEADER.size + length:
            self._compact()
            return None
        start = self._pos + HEADER.size
        self._pos = start + length
        payload = bytes(memoryview(self._buffer)[start:self._pos])  # one copy, the view is freed
        return _decode_payload(spec, stream_id, payload)

    def _compact(self) -> None:
        del self._buffer[:self._pos]
        self._pos = 0


def decode_all(data: bytes, max_payload: int = MAX_PAYLOAD) -> list[Frame]:
    """Every frame in ``data`` (for tests and tools; a trailing partial frame is dropped)."""
    decoder = FrameDecoder(max_payload)
    decoder.feed(data)
    frames: list[Frame] = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    return frames
