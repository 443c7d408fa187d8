"""What a tunnel connection reports: the events `Connection` calls return, one class each."""

from __future__ import annotations

from innerloop.core.filters import EVERYTHING, AppProtocol, Mode, RequestFilter
from innerloop.core.frames import ClaimEntry, Status
from innerloop.core.request import WhilePaused
from innerloop.core.value import Value


class HandshakeDone(Value):
    """``peer_name``: the client's id (agent side) or the agent's name (client side)."""

    __slots__ = _fields = ("peer_name",)

    def __init__(self, peer_name: str) -> None:
        self.peer_name = peer_name


class ClaimRequested(Value):
    __slots__ = _fields = ("request_id", "route_port", "local", "mode", "protocol", "filter")

    def __init__(self, request_id: int, route_port: int, local: str, mode: Mode = Mode.ROUTE,
                 protocol: AppProtocol = AppProtocol.AUTO,
                 filter: RequestFilter = EVERYTHING) -> None:
        self.request_id, self.route_port, self.local = request_id, route_port, local
        self.mode, self.protocol, self.filter = mode, protocol, filter


class ListRequested(Value):
    """Agent side: the client asks for every claim; answer with ``send_claim_list``."""

    __slots__ = _fields = ("request_id",)

    def __init__(self, request_id: int) -> None:
        self.request_id = request_id


class ClaimsListed(Value):
    """Client side: the agent's answer to ``list_claims``."""

    __slots__ = _fields = ("request_id", "entries")

    def __init__(self, request_id: int, entries: tuple[ClaimEntry, ...]) -> None:
        self.request_id, self.entries = request_id, entries


class ReleaseRequested(Value):
    __slots__ = _fields = ("request_id", "route_port")

    def __init__(self, request_id: int, route_port: int) -> None:
        self.request_id, self.route_port = request_id, route_port


class PauseRequested(Value):
    __slots__ = _fields = ("request_id", "while_paused")

    def __init__(self, request_id: int, while_paused: WhilePaused) -> None:
        self.request_id, self.while_paused = request_id, while_paused


class ResumeRequested(Value):
    __slots__ = _fields = ("request_id",)

    def __init__(self, request_id: int) -> None:
        self.request_id = request_id


class RequestDone(Value):
    __slots__ = _fields = ("request_id", "status", "holder", "reason")

    def __init__(self, request_id: int, status: Status, holder: str, reason: str) -> None:
        self.request_id, self.status, self.holder, self.reason = request_id, status, holder, reason


class StreamOpened(Value):
    __slots__ = _fields = ("stream_id", "route_port", "peer")

    def __init__(self, stream_id: int, route_port: int, peer: str) -> None:
        self.stream_id, self.route_port, self.peer = stream_id, route_port, peer


class DialRequested(Value):
    """Agent side: the client asks for a connection to ``host:port`` from the pod.

    Answer with ``accept`` once connected, or ``reset`` with the reason.
    """

    __slots__ = _fields = ("stream_id", "host", "port")

    def __init__(self, stream_id: int, host: str, port: int) -> None:
        self.stream_id, self.host, self.port = stream_id, host, port


class StreamAccepted(Value):
    """The peer accepted a stream we opened (on the client: the agent connected a DIAL)."""

    __slots__ = _fields = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class StreamNotAccepted(Value):
    """Agent side: the client declined or never accepted; serve the caller from the app.

    ``replay`` is every byte already taken from the caller: write it to the app first and
    nothing is lost.
    """

    __slots__ = _fields = ("stream_id", "route_port", "reason", "replay")

    def __init__(self, stream_id: int, route_port: int, reason: str, replay: bytes) -> None:
        self.stream_id, self.route_port = stream_id, route_port
        self.reason, self.replay = reason, replay


class DataReceived(Value):
    __slots__ = _fields = ("stream_id", "data")

    def __init__(self, stream_id: int, data: bytes) -> None:
        self.stream_id, self.data = stream_id, data


class CreditAvailable(Value):
    __slots__ = _fields = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class StreamEnded(Value):
    """The peer half-closed the stream (FIN)."""

    __slots__ = _fields = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class StreamReset(Value):
    __slots__ = _fields = ("stream_id", "reason")

    def __init__(self, stream_id: int, reason: str) -> None:
        self.stream_id, self.reason = stream_id, reason


class Closed(Value):
    __slots__ = _fields = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


MuxEvent = (HandshakeDone | ClaimRequested | ReleaseRequested | PauseRequested | ResumeRequested
            | ListRequested | ClaimsListed | RequestDone | StreamOpened | DialRequested
            | StreamAccepted | StreamNotAccepted | DataReceived | CreditAvailable | StreamEnded
            | StreamReset | Closed)
