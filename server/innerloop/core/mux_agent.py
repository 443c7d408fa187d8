"""The pod end of a tunnel connection (sans-I/O); the rules shared with the laptop end are in
`innerloop.core.mux`.
"""

from __future__ import annotations

from innerloop.core.errors import LocalProtocolError, RemoteProtocolError
from innerloop.core.frames import (
    MAX_PAYLOAD,
    VERSION,
    Claim,
    ClaimEntry,
    ClaimList,
    Dial,
    Frame,
    Goodbye,
    Hello,
    ListClaims,
    Open,
    Pause,
    Release,
    Reply,
    Reset,
    Resume,
    Status,
    Welcome,
)
from innerloop.core.mux import (
    ACCEPT_LIMIT_FACTOR,
    ACCEPT_TIMEOUT,
    DEFAULT_WINDOW,
    MAX_WINDOW,
    PEER_TIMEOUT,
    PING_INTERVAL,
    Connection,
    short_reason,
    valid_window,
)
from innerloop.core.mux_events import (
    ClaimRequested,
    DialRequested,
    ListRequested,
    MuxEvent,
    PauseRequested,
    ReleaseRequested,
    ResumeRequested,
    StreamNotAccepted,
    StreamReset,
)
from innerloop.core.streams import Stream


class AgentConnection(Connection):
    """The pod end: answers HELLO, reports requests, opens a stream per routed caller (odd
    stream ids) and reports the client's DIALs."""

    peer_role = "client"
    own_parity = 1

    def __init__(self, agent_name: str, *, now: float, window: int = DEFAULT_WINDOW,
                 ping_interval: float = PING_INTERVAL, peer_timeout: float = PEER_TIMEOUT,
                 accept_timeout: float = ACCEPT_TIMEOUT, max_payload: int = MAX_PAYLOAD,
                 max_window: int = MAX_WINDOW, accept_limit: float | None = None) -> None:
        super().__init__(now=now, window=window, ping_interval=ping_interval,
                         peer_timeout=peer_timeout, max_payload=max_payload,
                         max_window=max_window)
        self.client_id: str | None = None
        self._agent_name = agent_name
        self._accept_timeout = accept_timeout
        self._accept_limit = ACCEPT_LIMIT_FACTOR * accept_timeout if accept_limit is None \
            else accept_limit
        self._offered: dict[int, float] = {}  # streams waiting for ACCEPT → when opened
        self._progress = float("-inf")  # when the client last accepted or declined a stream
        self._requests: set[int] = set()

    def open_stream(self, route_port: int, peer: str, now: float) -> int:
        """Offer a new caller connection to the client; returns the stream id."""
        stream_id = self._open_own(route_port, lambda sid: Open(sid, route_port, short_reason(peer)),
                                   replay=bytearray())
        self._offered[stream_id] = now
        return stream_id

    def reply(self, request_id: int, status: Status = Status.OK, *, holder: str = "",
              reason: str = "") -> None:
        self._answer(request_id, Reply(request_id, status, short_reason(holder),
                                       short_reason(reason)))

    def send_claim_list(self, request_id: int, entries: list[ClaimEntry]) -> None:
        """Answer a ListRequested."""
        self._answer(request_id, ClaimList(request_id, tuple(entries)))

    def _answer(self, request_id: int, frame: Reply | ClaimList) -> None:
        self._check_open()
        if request_id not in self._requests:
            raise LocalProtocolError(f"no pending request {request_id}")
        self._requests.discard(request_id)
        self._send(frame)

    def reset(self, stream_id: int, reason: str) -> None:
        self._offered.pop(stream_id, None)
        super().reset(stream_id, reason)

    def _accept_deadline(self, opened: float) -> float:
        """``accept_timeout`` after the stream opened or after the client last answered one
        (whichever is later), but never beyond ``accept_limit``: a client that works through a
        burst of streams keeps them, a silent one loses each after ``accept_timeout``."""
        return min(max(opened, self._progress) + self._accept_timeout,
                   opened + self._accept_limit)

    def _stream_deadlines(self) -> list[float]:
        return [self._accept_deadline(opened) for opened in self._offered.values()]

    def _expire(self, now: float) -> None:
        for stream_id, opened in list(self._offered.items()):
            if now >= (deadline := self._accept_deadline(opened)):
                stream = self._streams.pop(stream_id)
                del self._offered[stream_id]
                reason = f"not accepted within {(deadline - opened) * 1000:.0f} ms"
                self._send(Reset(stream_id, reason))
                self._events.append(self._stream_lost(stream, reason))

    def _stream_lost(self, stream: Stream, reason: str) -> MuxEvent:
        if stream.replay is None:
            return StreamReset(stream.stream_id, reason)
        self._offered.pop(stream.stream_id, None)
        return StreamNotAccepted(stream.stream_id, stream.route_port, reason, bytes(stream.replay))

    def _handle_handshake(self, frame: Frame, now: float) -> None:
        if not isinstance(frame, Hello):
            raise self._unexpected(frame)
        if frame.version != VERSION:
            reason = (f"unsupported protocol version {frame.version}; "
                      f"this agent speaks {VERSION}")
            self._shut(reason)
            self._send(Goodbye(reason))
            return
        if not valid_window(frame.window):
            raise RemoteProtocolError(f"HELLO window {frame.window} out of range")
        self.client_id = frame.client_id
        self._send(Welcome(VERSION, short_reason(self._agent_name), self.window))
        self._established(frame.window, frame.client_id, now)

    def _on_accepted(self, stream: Stream, now: float) -> None:
        stream.replay = None
        del self._offered[stream.stream_id]
        self._progress = now

    def _handle_role_frame(self, frame: Frame, now: float) -> None:
        if isinstance(frame, Dial):
            self._peer_opened(frame, frame.port)
            self._events.append(DialRequested(frame.stream_id, frame.host, frame.port))
        elif isinstance(frame, (Claim, Release, Pause, Resume, ListClaims)):
            if frame.request_id in self._requests:
                raise RemoteProtocolError(f"request id {frame.request_id} reused")
            self._requests.add(frame.request_id)
            self._events.append(_request_event(frame))
        else:
            raise self._unexpected(frame)

    def _handle_reset(self, frame: Reset, now: float) -> None:
        stream = self._stream_for(frame)
        if stream is not None and stream.replay is not None:
            self._progress = now  # declined: an answer too
            del self._streams[frame.stream_id]
            self._events.append(self._stream_lost(stream, f"client declined: {frame.reason}"))
        else:
            super()._handle_reset(frame, now)


def _request_event(frame: Claim | Release | Pause | Resume | ListClaims) -> MuxEvent:
    if isinstance(frame, Claim):
        return ClaimRequested(frame.request_id, frame.route_port, frame.local, frame.mode,
                              frame.protocol, frame.filter)
    if isinstance(frame, ListClaims):
        return ListRequested(frame.request_id)
    if isinstance(frame, Release):
        return ReleaseRequested(frame.request_id, frame.route_port)
    if isinstance(frame, Pause):
        return PauseRequested(frame.request_id, frame.while_paused)
    return ResumeRequested(frame.request_id)
