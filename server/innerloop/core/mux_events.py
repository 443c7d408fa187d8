"""What a tunnel connection reports: the events `Connection` calls return, one class each."""

from __future__ import annotations

from dataclasses import dataclass

from innerloop.core.filters import EVERYTHING, AppProtocol, Mode, RequestFilter
from innerloop.core.frames import ClaimEntry, Status
from innerloop.core.request import WhilePaused


@dataclass(frozen=True)
class HandshakeDone:
    peer_name: str  # the client's id (agent side) or the agent's name (client side)


@dataclass(frozen=True)
class ClaimRequested:
    request_id: int
    route_port: int
    local: str
    mode: Mode = Mode.ROUTE
    protocol: AppProtocol = AppProtocol.AUTO
    filter: RequestFilter = EVERYTHING


@dataclass(frozen=True)
class ListRequested:
    """Agent side: the client asks for every claim; answer with ``send_claim_list``."""

    request_id: int


@dataclass(frozen=True)
class ClaimsListed:
    """Client side: the agent's answer to ``list_claims``."""

    request_id: int
    entries: tuple[ClaimEntry, ...]


@dataclass(frozen=True)
class ReleaseRequested:
    request_id: int
    route_port: int


@dataclass(frozen=True)
class PauseRequested:
    request_id: int
    while_paused: WhilePaused


@dataclass(frozen=True)
class ResumeRequested:
    request_id: int


@dataclass(frozen=True)
class RequestDone:
    request_id: int
    status: Status
    holder: str
    reason: str


@dataclass(frozen=True)
class StreamOpened:
    stream_id: int
    route_port: int
    peer: str


@dataclass(frozen=True)
class DialRequested:
    """Agent side: the client asks for a connection to ``host:port`` from the pod.

    Answer with ``accept`` once connected, or ``reset`` with the reason.
    """

    stream_id: int
    host: str
    port: int


@dataclass(frozen=True)
class StreamAccepted:
    """The peer accepted a stream we opened (on the client: the agent connected a DIAL)."""

    stream_id: int


@dataclass(frozen=True)
class StreamNotAccepted:
    """Agent side: the client declined or never accepted; serve the caller from the app.

    ``replay`` is every byte already taken from the caller: write it to the app first and
    nothing is lost.
    """

    stream_id: int
    route_port: int
    reason: str
    replay: bytes


@dataclass(frozen=True)
class DataReceived:
    stream_id: int
    data: bytes


@dataclass(frozen=True)
class CreditAvailable:
    stream_id: int


@dataclass(frozen=True)
class StreamEnded:
    """The peer half-closed the stream (FIN)."""

    stream_id: int


@dataclass(frozen=True)
class StreamReset:
    stream_id: int
    reason: str


@dataclass(frozen=True)
class Closed:
    reason: str


MuxEvent = (HandshakeDone | ClaimRequested | ReleaseRequested | PauseRequested | ResumeRequested
         | ListRequested | ClaimsListed | RequestDone | StreamOpened | DialRequested | StreamAccepted | StreamNotAccepted | DataReceived
         | CreditAvailable | StreamEnded | StreamReset | Closed)
